package node

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tbfg/tbfg-node/scheduler"
)

// Builds lists the builds q selects from this node's copy of the replicated
// state, in id order (or in the order of q.IDs).
func (n *Node) Builds(q BuildQuery) ([]BuildView, error) {
	if !n.running() {
		return nil, n.notReady()
	}
	keep, err := stateFilter(q.States)
	if err != nil {
		return nil, err
	}
	out := []BuildView{}
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
				err = fmt.Errorf("%w: %d", ErrNoBuild, id)
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
			return nil, fmt.Errorf("%w: state %q: want one of %s", ErrBadRequest, name,
				strings.Join(slices.Sorted(maps.Keys(byName)), ", "))
		}
		want[s] = true
	}
	return func(s scheduler.BuildState) bool { return want[s] }, nil
}

// buildView converts a build record for the API.
func buildView(b scheduler.BuildInfo) BuildView {
	v := BuildView{ID: uint64(b.ID), Derivation: b.Drv, System: b.System, State: b.State.String(),
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

// ParseBuildQuery reads a BuildQuery from the query string of GET
// /v1/builds: id (repeatable or comma-separated), state (likewise), after
// and limit.
func ParseBuildQuery(values map[string][]string) (BuildQuery, error) {
	var q BuildQuery
	for _, v := range splitValues(values["id"]) {
		id, err := strconv.ParseUint(v, 10, 64)
		if err != nil || id == 0 {
			return q, fmt.Errorf("%w: id %q: want a build number", ErrBadRequest, v)
		}
		q.IDs = append(q.IDs, id)
	}
	q.States = splitValues(values["state"])
	var err error
	if v := values["after"]; len(v) > 0 {
		if q.After, err = strconv.ParseUint(v[0], 10, 64); err != nil {
			return q, fmt.Errorf("%w: after %q: want a build number", ErrBadRequest, v[0])
		}
	}
	if v := values["limit"]; len(v) > 0 {
		if q.Limit, err = strconv.Atoi(v[0]); err != nil || q.Limit < 0 {
			return q, fmt.Errorf("%w: limit %q: want a count", ErrBadRequest, v[0])
		}
	}
	return q, nil
}

// Values returns q as a query string for GET /v1/builds.
func (q BuildQuery) Values() map[string][]string {
	v := map[string][]string{}
	for _, id := range q.IDs {
		v["id"] = append(v["id"], strconv.FormatUint(id, 10))
	}
	if len(q.States) > 0 {
		v["state"] = q.States
	}
	if q.After > 0 {
		v["after"] = []string{strconv.FormatUint(q.After, 10)}
	}
	if q.Limit > 0 {
		v["limit"] = []string{strconv.Itoa(q.Limit)}
	}
	return v
}

// splitValues splits comma-separated values and drops empty ones.
func splitValues(vs []string) []string {
	var out []string
	for _, v := range vs {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				out = append(out, f)
			}
		}
	}
	return out
}
