package scheduler

import (
	"context"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.now = t }

// TestLeaderTickEndsBackoff: a build backing off after a transient failure is
// allocated again on the first tick after its not-before time, and not
// before.
func TestLeaderTickEndsBackoff(t *testing.T) {
	f := NewFSM(nil)
	app := &LocalApplier{FSM: f}
	ctx, cancel := context.WithCancel(context.Background())
	apply := func(c Command) {
		t.Helper()
		if _, err := app.Apply(ctx, Encode(c)); err != nil {
			t.Fatal(err)
		}
	}
	clock := &fakeClock{now: t0}
	tick := make(chan time.Time)
	rounds := make(chan struct{}, 10) // Round reads the clock, then calls Nodes
	leader, err := NewLeader(LeaderConfig{FSM: f, Applier: app, Now: clock.Now, Tick: tick,
		Nodes: func() []NodeView { rounds <- struct{}{}; return views("n1") }})
	if err != nil {
		t.Fatal(err)
	}
	apply(joined("n1", 1, x86))
	apply(&Submit{Time: t0, Derivations: []Derivation{drv("a", x86)}})
	if n, err := leader.Round(ctx); n != 1 || err != nil {
		t.Fatalf("first round: %d, %v", n, err)
	}
	apply(&Failed{Time: t0, Build: 1, Node: "n1", Reason: ReasonInfrastructure})
	if n, err := leader.Round(ctx); n != 0 || err != nil {
		t.Fatalf("round during back-off allocated %d (%v)", n, err)
	}

	<-rounds
	<-rounds

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = leader.Run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	<-rounds // Run's first round has read the clock: still in the back-off
	clock.Set(t0.Add(BackoffBase))
	tick <- clock.Now() // received once the first round is over
	waitFor(t, "re-allocation after the back-off", func() bool {
		var st BuildState
		f.Read(func(s *State) { st = stateOf(t, s, 1) })
		return st == BuildAllocated
	})
}

func TestNewLeaderNeedsParts(t *testing.T) {
	if _, err := NewLeader(LeaderConfig{}); err == nil {
		t.Fatal("empty config accepted")
	}
}
