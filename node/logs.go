package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"

	"github.com/tbfg/tbfg-node/node/adminapi"
	"github.com/tbfg/tbfg-node/node/web"
	"github.com/tbfg/tbfg-node/scheduler"
	"github.com/tbfg/tbfg-node/substitutes/publish"
)

// OpenLog opens the log of build id from whichever member holds it (this
// node's log directory, or the member that runs or ran the build, over the
// mesh) and returns the offset of the first byte it reads. It is the one
// way the node reads build logs, for the status server and the admin API
// alike.
//
// opts.Offset is the first byte (negative: from the end of what is written
// so far). With opts.Follow the reader goes on while the build runs, also
// when its log does not exist yet, and returns io.EOF once the log is
// complete and this node's replica shows the build ended; its Read returns
// once ctx ends.
//
// Errors match, with errors.Is, adminapi.ErrNoBuild and web.ErrNotFound for
// an unknown build, web.ErrNotFound for a build without a log (never
// allocated, or no member has it; a log that retention removed, here or on
// the member that ran the build, says
// "removed by retention on DATE"), and adminapi.ErrUnavailable and
// web.ErrUnavailable while the node is not running.
func (n *Node) OpenLog(ctx context.Context, id uint64, opts web.LogOptions) (io.ReadCloser, int64, error) {
	if !n.running() {
		return nil, 0, classify(fmt.Errorf("log of build %d: node is %s", id, n.state.Load()),
			adminapi.ErrUnavailable, web.ErrUnavailable)
	}
	var b scheduler.BuildInfo
	var unknown error
	n.fsm.Read(func(st *scheduler.State) {
		var ok bool
		if b, ok = st.Build(scheduler.BuildID(id)); !ok {
			unknown = noBuild(st, id, n.cfg.History)
		}
	})
	if unknown != nil {
		return nil, 0, classify(fmt.Errorf("log of build %d: %w", id, unknown), web.ErrNotFound)
	}
	rc, start, err := n.source.BuildLog(ctx, scheduler.BuildID(id), opts.Offset, opts.Follow)
	if errors.Is(err, publish.ErrNotFound) {
		// A log this node's retention removed says so, and when.
		if rerr := n.logs.Removed(path.Base(b.Drv)); rerr != nil {
			err = fmt.Errorf("build %d: %w", id, rerr)
		}
		return nil, 0, classify(err, web.ErrNotFound, adminapi.ErrNoLog)
	}
	return rc, start, err
}

// classified is an error that also matches some sentinels of other
// packages, for errors.Is, without changing its text.
type classified struct {
	err   error
	kinds []error
}

// classify makes err match kinds too.
func classify(err error, kinds ...error) error { return &classified{err: err, kinds: kinds} }

func (c *classified) Error() string   { return c.err.Error() }
func (c *classified) Unwrap() []error { return append([]error{c.err}, c.kinds...) }
