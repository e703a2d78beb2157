package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/tbfg/tbfg-node/node/adminapi"
)

// How submit --wait talks to the node. It reads the builds once the node's
// replica has applied the submission (the Raft index the submit answered,
// so that a follower knows the builds the leader just created), and then
// only the builds that changed, as the node's long poll of changes names
// them: no call while nothing happens.
const (
	// indexWait bounds the wait for the node to apply the submission.
	indexWait = time.Minute
	// longPoll bounds one call that waits for changes.
	longPoll = 30 * time.Second
	// readBatch is how many build ids one read asks for.
	readBatch = 500
)

// waitBuilds follows the builds of res until all are done. Without a
// terminal it prints each build as it finishes; on one, a progress line
// (progress.go). It fails with exit code 1 if any did not succeed, after
// saying what to do next.
func waitBuilds(ctx context.Context, s *stdio, cl *adminapi.Client, res adminapi.SubmitResult, cf *clientFlags) error {
	p := newProgress(res.Builds, time.Now())
	var live *liveLine
	if !cf.json && isTerminal(s.out) {
		live = &liveLine{w: s.out}
	}
	f := &follower{cl: cl, timeout: cf.timeout, pending: map[uint64]bool{}}
	for _, b := range res.Builds {
		f.pending[b.ID] = true
	}
	err := f.run(ctx, res.Index, live != nil, func(bs []adminapi.BuildView) {
		for _, b := range bs {
			if p.update(b) && live == nil && !cf.json {
				fmt.Fprintf(s.out, "%d\t%s\t%s\n", b.ID, b.State, b.Derivation)
			}
		}
		live.show(p.line(time.Now()))
	})
	live.end()
	if err != nil {
		return fmt.Errorf("%w (the builds go on: see them with tbfg-node builds)", err)
	}
	if cf.json {
		if err := printJSON(s.out, p.finished); err != nil {
			return err
		}
	}
	return reportFailed(s.err, p.finished)
}

// follower reads the builds it follows as they change.
type follower struct {
	cl      *adminapi.Client
	timeout time.Duration   // of one call, on top of its waits
	pending map[uint64]bool // followed builds not finished yet
}

// run calls show with every batch of builds it reads, and every second
// with none if tick, until no build is pending or ctx ends. show runs on
// the caller's goroutine.
func (f *follower) run(ctx context.Context, index uint64, tick bool, show func([]adminapi.BuildView)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan []adminapi.BuildView)
	done := make(chan error, 1)
	go func() { done <- f.follow(ctx, index, batches) }()
	var ticks <-chan time.Time
	if tick {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		ticks = t.C
	}
	for {
		select {
		case bs, ok := <-batches:
			if !ok {
				return <-done
			}
			show(bs)
		case <-ticks:
			show(nil)
		}
	}
}

// follow sends the builds it reads to out until none is pending; it closes
// out when it returns.
func (f *follower) follow(ctx context.Context, index uint64, out chan<- []adminapi.BuildView) error {
	defer close(out)
	ch, err := f.changes(ctx, adminapi.ReadAt{Index: index, Wait: indexWait}, "")
	for err == nil && len(f.pending) > 0 {
		ids := f.changed(ch)
		for i := 0; i < len(ids) && err == nil; i += readBatch {
			var bs []adminapi.BuildView
			if bs, err = f.read(ctx, ch.Index, ids[i:min(i+readBatch, len(ids))]); err == nil {
				select {
				case out <- bs:
				case <-ctx.Done():
					err = ctx.Err()
				}
			}
		}
		if err == nil && len(f.pending) > 0 {
			ch, err = f.changes(ctx, adminapi.ReadAt{Wait: longPoll}, ch.Cursor)
		}
	}
	if err != nil {
		return fmt.Errorf("waiting for %d builds: %w", len(f.pending), err)
	}
	return nil
}

// changed returns the pending builds ch says changed (all after a reset),
// ascending.
func (f *follower) changed(ch adminapi.Changes) []uint64 {
	var ids []uint64
	if ch.Reset {
		for id := range f.pending {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		return ids
	}
	for _, id := range ch.Builds {
		if f.pending[id] {
			ids = append(ids, id)
		}
	}
	return ids
}

// changes asks for the changes after cursor.
func (f *follower) changes(ctx context.Context, at adminapi.ReadAt, cursor string) (adminapi.Changes, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout+at.Wait)
	defer cancel()
	return f.cl.At(at).Changes(ctx, cursor)
}

// read reads the builds ids at index and forgets those that finished.
func (f *follower) read(ctx context.Context, index uint64, ids []uint64) ([]adminapi.BuildView, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	bs, err := f.cl.At(adminapi.ReadAt{Index: index}).Builds(ctx, adminapi.BuildQuery{IDs: ids})
	for _, b := range bs {
		if finalState(b.State) {
			delete(f.pending, b.ID)
		}
	}
	return bs, err
}

// finalState reports whether a build in state s is done until someone
// resubmits or retries it.
func finalState(s string) bool {
	switch s {
	case "succeeded", "failed", "canceled", "failed-dependency", "available":
		return true
	}
	return false
}

// succeeded reports whether a finished build's outputs are there.
func succeeded(b adminapi.BuildView) bool { return b.State == "succeeded" || b.State == "available" }

// reportFailed says which builds did not succeed and what to do next, and
// returns exit code 1 if any.
func reportFailed(w io.Writer, builds []adminapi.BuildView) error {
	var retry []uint64
	failed := 0
	for _, b := range builds {
		if succeeded(b) {
			continue
		}
		failed++
		state := b.State
		if b.Reason != "" {
			state += " (" + b.Reason + ")"
		}
		fmt.Fprintf(w, "tbfg-node submit: build %d %s: %s", b.ID, state, b.Derivation)
		switch {
		case b.State == "failed":
			fmt.Fprintf(w, "; see why with: tbfg-node log %d", b.ID)
			retry = append(retry, b.ID)
		case b.State == "canceled":
			retry = append(retry, b.ID)
		case b.Cause != 0:
			fmt.Fprintf(w, "; it needs build %d", b.Cause)
		}
		fmt.Fprintln(w)
	}
	if failed == 0 {
		return nil
	}
	fmt.Fprintf(w, "tbfg-node submit: %d of %d builds did not succeed", failed, len(builds))
	if len(retry) > 0 {
		fmt.Fprintf(w, "; once fixed, run again with: tbfg-node retry%s", idList(retry))
	}
	fmt.Fprintln(w)
	return exitCode(1)
}

// idList is " 1 2 3", for a command line.
func idList(ids []uint64) string {
	s := ""
	for _, id := range ids {
		s += fmt.Sprintf(" %d", id)
	}
	return s
}
