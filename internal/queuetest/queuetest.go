package queuetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/testlog"
	"github.com/tbfg/tbfg-node/scheduler"
)

// WaitTimeout bounds every wait for the state to reach a condition.
const WaitTimeout = 2 * time.Minute

// Queue is a build queue shared by the members of a test.
type Queue struct {
	// FSM is the state every member reads.
	FSM *scheduler.FSM
	// Applier commits commands to FSM, as the mesh would.
	Applier *scheduler.LocalApplier
	// Now stamps the commands the helpers make.
	Now func() time.Time
}

// New returns an empty queue whose FSM logs to t. now stamps the commands
// the helpers make; nil means time.Now.
func New(t testing.TB, now func() time.Time) *Queue {
	if now == nil {
		now = time.Now
	}
	fsm := scheduler.NewFSM(testlog.New(t, "fsm"))
	return &Queue{FSM: fsm, Applier: &scheduler.LocalApplier{FSM: fsm}, Now: now}
}

// Apply commits cmd and returns the state machine's response, failing t if
// it is rejected.
func (q *Queue) Apply(t testing.TB, cmd scheduler.Command) []byte {
	t.Helper()
	resp, err := q.Applier.Apply(context.Background(), scheduler.Encode(cmd))
	if err != nil {
		t.Fatalf("apply %T: %v", cmd, err)
	}
	return resp
}

// Join registers member id with the Guix public key key, building for
// x86_64-linux up to maxBuilds at once.
func (q *Queue) Join(t testing.TB, id, key string, maxBuilds int) {
	t.Helper()
	q.Apply(t, &scheduler.NodeJoined{Time: q.Now(), Node: id, Key: key,
		Systems: []string{"x86_64-linux"}, MaxBuilds: maxBuilds})
}

// WaitFor waits until cond holds for the state, failing t after
// WaitTimeout. cond is checked again after every change of the state.
func (q *Queue) WaitFor(t testing.TB, what string, cond func(s *scheduler.State) bool) {
	t.Helper()
	sub := q.FSM.Changes()
	defer sub.Close()
	deadline := time.NewTimer(WaitTimeout)
	defer deadline.Stop()
	for {
		ok := false
		q.FSM.Read(func(s *scheduler.State) { ok = cond(s) })
		if ok {
			return
		}
		select {
		case <-sub.C:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// Build returns a build's record, failing t if there is none.
func (q *Queue) Build(t testing.TB, id scheduler.BuildID) scheduler.BuildInfo {
	t.Helper()
	var b scheduler.BuildInfo
	var ok bool
	q.FSM.Read(func(s *scheduler.State) { b, ok = s.Build(id) })
	if !ok {
		t.Fatalf("no build %d", id)
	}
	return b
}

// Clock is a clock that moves only when told, for stamping commands.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock showing start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now is the time the clock shows.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
