package node

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/tbfg/tbfg-node/node/adminapi"
	"github.com/tbfg/tbfg-node/scheduler"
)

// Builds lists the builds q selects from this node's copy of the replicated
// state, in id order (or in the order of q.IDs).
func (n *Node) Builds(q adminapi.BuildQuery) ([]adminapi.BuildView, error) {
	if !n.running() {
		return nil, n.notReady()
	}
	keep, err := stateFilter(q.States)
	if err != nil {
		return nil, err
	}
	out := []adminapi.BuildView{}
	n.fsm.Read(func(st *scheduler.State) {
		if len(q.IDs) == 0 {
			for _, b := range st.Builds(scheduler.BuildID(q.After), q.Limit, keep) {
				out = append(out, buildView(b))
			}
			return
		}
		for _, id := range q.IDs {
			b, ok := st.Build(scheduler.BuildID(id))
			if !ok {
				err = fmt.Errorf("%w: %d", adminapi.ErrNoBuild, id)
				return
			}
			if keep == nil || keep(b.State) {
				out = append(out, buildView(b))
			}
		}
	})
	return out, err
}

// stateFilter turns state names into a filter; none keeps every build.
func stateFilter(names []string) (func(scheduler.BuildState) bool, error) {
	if len(names) == 0 {
		return nil, nil
	}
	byName := map[string]scheduler.BuildState{}
	for s := scheduler.BuildQueued; s.String() != "unknown"; s++ {
		byName[s.String()] = s
	}
	want := map[scheduler.BuildState]bool{}
	for _, name := range names {
		s, ok := byName[name]
		if !ok {
			return nil, fmt.Errorf("%w: state %q: want one of %s", adminapi.ErrBadRequest, name,
				strings.Join(slices.Sorted(maps.Keys(byName)), ", "))
		}
		want[s] = true
	}
	return func(s scheduler.BuildState) bool { return want[s] }, nil
}

// buildView converts a build record for the API.
func buildView(b scheduler.BuildInfo) adminapi.BuildView {
	v := adminapi.BuildView{ID: uint64(b.ID), Derivation: b.Drv, System: b.System, State: b.State.String(),
		Attempt: b.Attempt, Node: b.Node, LastNode: b.LastNode, Priority: b.Priority, Submitter: b.Submitter,
		Outputs: map[string]string{}, Inputs: b.Inputs, Message: b.Message,
		Submitted: timePtr(b.Submitted), Allocated: timePtr(b.Allocated), Started: timePtr(b.Started),
		Finished: timePtr(b.Finished), NotBefore: timePtr(b.NotBefore)}
	if b.Reason != scheduler.ReasonNone {
		v.Reason = b.Reason.String()
	}
	if v.Inputs == nil {
		v.Inputs = []string{}
	}
	for _, o := range b.Outputs {
		v.Outputs[o.Name] = o.Path
	}
	return v
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}
