package membership

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/queuetest"
	"github.com/tbfg/tbfg-node/internal/testlog"
	"github.com/tbfg/tbfg-node/mesh"
	"github.com/tbfg/tbfg-node/scheduler"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

const removeAfter = time.Minute

// fakeMesh is a Mesh over a shared queue: its configuration and gossip are
// what the test sets, and it commits straight to the queue.
type fakeMesh struct {
	id      string
	app     scheduler.Applier
	applies atomic.Int32
	lead    chan bool

	mu      sync.Mutex
	members []mesh.Member
	left    bool
}

func (f *fakeMesh) ID() string { return f.id }

func (f *fakeMesh) Members() []mesh.Member {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]mesh.Member(nil), f.members...)
}

func (f *fakeMesh) setMembers(ms ...mesh.Member) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.members = ms
}

func (f *fakeMesh) Apply(ctx context.Context, cmd []byte) ([]byte, error) {
	f.applies.Add(1)
	return f.app.Apply(ctx, cmd)
}

func (f *fakeMesh) WatchLeadership(context.Context) <-chan bool { return f.lead }

func (f *fakeMesh) Leave(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.left = true
	return nil
}

// fixture is a membership of node "self" over a fake mesh and a shared
// queue whose clock starts at t0.
type fixture struct {
	q     *queuetest.Queue
	clock *queuetest.Clock
	mesh  *fakeMesh
	m     *Membership
}

func newFixture(t *testing.T) *fixture {
	clock := queuetest.NewClock(t0)
	q := queuetest.New(t, clock.Now)
	fm := &fakeMesh{id: "self", app: q.Applier, lead: make(chan bool, 1)}
	m := New(Config{
		Mesh: fm, FSM: q.FSM, GossipInterval: time.Second, RemoveAfter: removeAfter, Now: clock.Now,
		Registration: scheduler.NodeJoined{Key: "key-self", Systems: []string{"x86_64-linux"}, MaxBuilds: 2},
		Logger:       testlog.New(t, "membership"),
	})
	return &fixture{q: q, clock: clock, mesh: fm, m: m}
}

// member returns the state's record of id.
func (fx *fixture) member(id string) (scheduler.MemberInfo, bool) {
	var mi scheduler.MemberInfo
	var ok bool
	fx.q.FSM.Read(func(s *scheduler.State) {
		for _, m := range s.Members() {
			if m.ID == id {
				mi, ok = m, true
			}
		}
	})
	return mi, ok
}

// run runs the membership until the test ends, then checks that Run
// returned nil.
func (fx *fixture) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fx.m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
}
