package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tbfg/tbfg-node/node/adminapi"
	"github.com/tbfg/tbfg-node/node/datadir"
)

// fakeNode is an admin API Backend that plays a follower: the builds of a
// submission exist only once WaitIndex was asked for the index the submit
// answered, as a follower's replica applies the leader's commit a little
// later. Its change feed plays steps, one per call, then waits.
type fakeNode struct {
	mu      sync.Mutex
	builds  map[uint64]adminapi.BuildView
	order   []uint64 // of the submission
	roots   []uint64
	index   uint64 // the submission's Raft index
	applied uint64
	steps   []step // what each call of Changes after the first changes
	cursor  int
	reads   int // calls of Builds
	req     adminapi.SubmitRequest
	logs    map[uint64]string
	actions []string
	gc      adminapi.GCResult  // the answer to GC
	gcReq   adminapi.GCRequest // the last GC request
}

// step is one change of the feed: new states of builds, or a reset. A
// build made failed-dependency needs build 1.
type step struct {
	states map[uint64]string
	reset  bool
}

// newFakeNode returns a node whose submission creates builds, each
// "ID:DRV" in order, the first roots of them the requested ones.
func newFakeNode(roots int, builds ...string) *fakeNode {
	f := &fakeNode{builds: map[uint64]adminapi.BuildView{}, index: 7, applied: 5, logs: map[uint64]string{}}
	for _, b := range builds {
		var id uint64
		var drv string
		fmt.Sscanf(strings.Replace(b, ":", " ", 1), "%d %s", &id, &drv)
		f.order = append(f.order, id)
		f.builds[id] = adminapi.BuildView{ID: id, Derivation: drv, State: "queued"}
	}
	f.roots = f.order[len(f.order)-roots:]
	return f
}

// serve runs the admin API over f in a new data dir and returns it.
func (f *fakeNode) serve(t *testing.T) string {
	dir := t.TempDir()
	a := adminapi.NewServer(f, slog.New(slog.DiscardHandler))
	if err := a.Listen(filepath.Join(dir, datadir.AdminSocket)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Shutdown(context.Background()) })
	return dir
}

func (f *fakeNode) Status() adminapi.Status             { return adminapi.Status{State: adminapi.StateRunning} }
func (f *fakeNode) Nodes() ([]adminapi.NodeView, error) { return nil, nil }
func (f *fakeNode) Leave(context.Context) error         { return nil }
func (f *fakeNode) ACL() (adminapi.ACLView, error)      { return adminapi.ACLView{}, nil }
func (f *fakeNode) GC(_ context.Context, req adminapi.GCRequest) (adminapi.GCResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gcReq = req
	res := f.gc
	res.DryRun = req.DryRun
	return res, nil
}

func (f *fakeNode) Submit(_ context.Context, req adminapi.SubmitRequest) (adminapi.SubmitResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.req = req
	res := adminapi.SubmitResult{Index: f.index}
	for _, id := range f.order {
		b := adminapi.SubmittedBuild{ID: id, Derivation: f.builds[id].Derivation, State: "submitted"}
		res.Builds = append(res.Builds, b)
		if slices.Contains(f.roots, id) {
			res.Roots = append(res.Roots, b)
		}
	}
	return res, nil
}

func (f *fakeNode) Builds(q adminapi.BuildQuery) ([]adminapi.BuildView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	out := []adminapi.BuildView{}
	for _, id := range q.IDs {
		b, ok := f.builds[id]
		if !ok || f.applied < f.index {
			return nil, fmt.Errorf("%w: %d", adminapi.ErrNoBuild, id)
		}
		out = append(out, b)
	}
	return out, nil
}

func (f *fakeNode) Index() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applied
}

// WaitIndex applies the submission when asked for it.
func (f *fakeNode) WaitIndex(_ context.Context, index uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = max(f.applied, index)
	return nil
}

func (f *fakeNode) Changes(ctx context.Context, cursor string) (adminapi.Changes, error) {
	f.mu.Lock()
	if cursor == "" {
		defer f.mu.Unlock()
		return adminapi.Changes{Cursor: "c0", Index: f.applied, Reset: true}, nil
	}
	if f.cursor >= len(f.steps) {
		f.mu.Unlock()
		<-ctx.Done()
		return adminapi.Changes{Cursor: cursor}, nil
	}
	defer f.mu.Unlock()
	s := f.steps[f.cursor]
	f.cursor++
	f.applied++
	ch := adminapi.Changes{Cursor: fmt.Sprintf("c%d", f.cursor), Index: f.applied, Reset: s.reset}
	for id, state := range s.states {
		b := f.builds[id]
		b.State = state
		switch state {
		case "failed":
			b.Reason = "build-error"
		case "failed-dependency":
			b.Cause = 1
		}
		f.builds[id] = b
		ch.Builds = append(ch.Builds, id)
	}
	slices.Sort(ch.Builds)
	if s.reset {
		ch.Builds = nil
	}
	return ch, nil
}

func (f *fakeNode) action(name, state string, ids []uint64) (adminapi.ActionResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.actions = append(f.actions, fmt.Sprint(name, ids))
	var res adminapi.ActionResult
	for _, id := range ids {
		b, ok := f.builds[id]
		if !ok {
			return res, fmt.Errorf("%w: %d", adminapi.ErrNoBuild, id)
		}
		if state != "" && !finalState(b.State) {
			b.State = state
		}
		res.Builds = append(res.Builds, b)
	}
	return res, nil
}

func (f *fakeNode) Cancel(_ context.Context, ids []uint64) (adminapi.ActionResult, error) {
	return f.action("cancel", "canceled", ids)
}

func (f *fakeNode) Retry(_ context.Context, ids []uint64) (adminapi.ActionResult, error) {
	return f.action("retry", "", ids)
}

func (f *fakeNode) Log(_ context.Context, id uint64, follow bool) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	text, ok := f.logs[id]
	if !ok {
		return nil, fmt.Errorf("%w: build %d has not started", adminapi.ErrNoLog, id)
	}
	if follow {
		text += "(followed)\n"
	}
	return io.NopCloser(strings.NewReader(text)), nil
}
