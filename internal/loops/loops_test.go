package loops

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
)

// recorder keeps the events of a test's loops in the order they happen.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(e string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// loop returns a run function that records its start, signals started, and
// records its end once its context ends.
func (r *recorder) loop(name string, started chan<- struct{}) func(context.Context) error {
	return func(ctx context.Context) error {
		r.add("start " + name)
		started <- struct{}{}
		<-ctx.Done()
		r.add("end " + name)
		return ctx.Err()
	}
}

func TestStopInReverseOrder(t *testing.T) {
	var r recorder
	g := New(context.Background(), nil)
	started := make(chan struct{})
	g.Defer("cache", func() error { r.add("close cache"); return nil })
	g.Go("server", nil, r.loop("server", started))
	<-started
	g.Defer("advert", func() error { r.add("close advert"); return nil })
	g.Go("agent", nil, r.loop("agent", started))
	<-started
	if err := g.Stop(); err != nil {
		t.Fatalf("Stop = %v", err)
	}
	want := []string{"start server", "start agent", "end agent", "close advert", "end server", "close cache"}
	if got := r.get(); !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
	if err := g.Stop(); err != nil || len(r.get()) != len(want) {
		t.Errorf("second Stop = %v, events %q: want nothing more", err, r.get())
	}
}

func TestGate(t *testing.T) {
	for _, open := range []bool{true, false} {
		t.Run(map[bool]string{true: "opened", false: "never opened"}[open], func(t *testing.T) {
			var r recorder
			g := New(context.Background(), nil)
			gate := make(chan struct{})
			started := make(chan struct{}, 1)
			g.Go("gated", gate, r.loop("gated", started))
			if len(r.get()) != 0 {
				t.Fatalf("ran before the gate opened: %q", r.get())
			}
			if open {
				close(gate)
				<-started
			}
			if err := g.Stop(); err != nil {
				t.Fatalf("Stop = %v", err)
			}
			var want []string // run is never called
			if open {
				want = []string{"start gated", "end gated"}
			}
			if got := r.get(); !slices.Equal(got, want) {
				t.Errorf("events %q, want %q", got, want)
			}
		})
	}
}

func TestStopReturnsErrors(t *testing.T) {
	errRun, errClose := errors.New("serve failed"), errors.New("close failed")
	g := New(context.Background(), nil)
	g.Defer("cache", func() error { return errClose })
	g.Go("server", nil, func(context.Context) error { return errRun })
	g.Go("agent", nil, func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	err := g.Stop()
	if !errors.Is(err, errRun) || !errors.Is(err, errClose) || errors.Is(err, context.Canceled) {
		t.Errorf("Stop = %v, want the server's and the cache's errors and no cancellation", err)
	}
}

func TestAfterStop(t *testing.T) {
	g := New(context.Background(), nil)
	if err := g.Stop(); err != nil {
		t.Fatal(err)
	}
	ran := false
	g.Go("late", nil, func(context.Context) error { ran = true; return nil })
	cleaned := false
	g.Defer("late", func() error { cleaned = true; return nil })
	if err := g.Stop(); err != nil || ran || !cleaned {
		t.Errorf("after Stop: Stop = %v, loop ran %v, cleanup ran %v; want nil, false, true", err, ran, cleaned)
	}
}

func TestParentContextEndsLoops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	g := New(ctx, nil)
	ended := make(chan struct{})
	g.Go("loop", nil, func(ctx context.Context) error { <-ctx.Done(); close(ended); return ctx.Err() })
	cancel()
	<-ended
	if err := g.Stop(); err != nil {
		t.Errorf("Stop = %v", err)
	}
}
