package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tbfg/tbfg-node/mesh"
	"github.com/tbfg/tbfg-node/node/adminapi"
	"github.com/tbfg/tbfg-node/node/web"
	"github.com/tbfg/tbfg-node/scheduler"
)

// Cancel cancels the builds ids that have not finished (the scheduler's
// Cancel: a finished build is left alone, and builds that need a canceled
// one become failed-dependency).
func (n *Node) Cancel(ctx context.Context, ids []uint64) (adminapi.ActionResult, error) {
	return n.buildAction(ctx, "cancel", ids, &scheduler.Cancel{Time: time.Now(), Builds: buildIDs(ids)})
}

// Retry re-queues the builds ids that failed or were canceled, forgetting
// their failure (the scheduler's Retry). For a failed-dependency build it
// re-queues the build that failed in the first place; the builds that
// failed because of that one are re-queued when it succeeds.
func (n *Node) Retry(ctx context.Context, ids []uint64) (adminapi.ActionResult, error) {
	return n.buildAction(ctx, "retry", ids, &scheduler.Retry{Time: time.Now(), Builds: buildIDs(ids)})
}

// buildAction commits cmd, which acts on the builds ids, and answers
// those builds as the replica knows them once it applied cmd.
func (n *Node) buildAction(ctx context.Context, what string, ids []uint64, cmd scheduler.Command) (adminapi.ActionResult, error) {
	if !n.running() {
		return adminapi.ActionResult{}, n.notReady()
	}
	_, index, err := n.mesh.ApplyIndexed(ctx, scheduler.Encode(cmd))
	var fe *mesh.FSMError
	if errors.As(err, &fe) {
		// The state machine rejects a Cancel or Retry only for an unknown
		// build; say which.
		if unknown := n.unknownBuilds(ids); unknown != nil {
			return adminapi.ActionResult{}, unknown
		}
	}
	if err != nil {
		return adminapi.ActionResult{}, fmt.Errorf("%s: %w", what, err)
	}
	n.waitApplied(ctx, index)
	builds, err := n.Builds(adminapi.BuildQuery{IDs: ids})
	return adminapi.ActionResult{Index: index, Builds: builds}, err
}

// unknownBuilds returns an error naming the ids the replica has no record
// of, nil if it knows them all; a compacted one is named alone, saying so.
func (n *Node) unknownBuilds(ids []uint64) error {
	var unknown []string
	var err error
	n.fsm.Read(func(st *scheduler.State) {
		for _, id := range ids {
			if _, ok := st.Build(scheduler.BuildID(id)); ok {
				continue
			}
			if st.Compacted(scheduler.BuildID(id)) {
				err = noBuild(st, id, n.cfg.History)
				return
			}
			unknown = append(unknown, fmt.Sprint(id))
		}
	})
	if err == nil && len(unknown) > 0 {
		err = fmt.Errorf("%w: %s", adminapi.ErrNoBuild, strings.Join(unknown, ", "))
	}
	return err
}

func buildIDs(ids []uint64) []scheduler.BuildID {
	out := make([]scheduler.BuildID, len(ids))
	for i, id := range ids {
		out[i] = scheduler.BuildID(id)
	}
	return out
}

// Log opens the whole log of build id, from whichever member holds it
// (OpenLog); with follow, reading it goes on until the build ends.
func (n *Node) Log(ctx context.Context, id uint64, follow bool) (io.ReadCloser, error) {
	rc, _, err := n.OpenLog(ctx, id, web.LogOptions{Follow: follow})
	if errors.Is(err, web.ErrNotFound) && !errors.Is(err, adminapi.ErrNoBuild) {
		return nil, fmt.Errorf("%w: %w", adminapi.ErrNoLog, err)
	}
	return rc, err
}
