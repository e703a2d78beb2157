package mesh

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
)

// closeBound is how long Close of a busy node may take: far below
// closeTimeout, and below Raft's 10s transport deadline, which a Close
// waiting on a stalled stream would reach.
const closeBound = 5 * time.Second

// TestCloseLeaderUnderLoad closes the leader while both followers forward
// commands in a loop, a fresh node is in the middle of joining, and one
// follower's Raft has stopped answering (as a stopped process or a dead
// link looks until deadlines expire), a few times over. Close must return
// promptly and cleanly every time, the survivors must carry on, and once
// every node is closed no goroutine of the mesh or Raft may be left.
func TestCloseLeaderUnderLoad(t *testing.T) {
	for round := range 3 {
		t.Run(fmt.Sprint("round ", round), closeLeaderUnderLoad)
	}
	waitFor(t, 10*time.Second, "no goroutine left", func() error {
		if g := meshGoroutines(); len(g) > 0 {
			return fmt.Errorf("%d goroutines left, first:\n%s", len(g), g[0])
		}
		return nil
	})
}

func closeLeaderUnderLoad(t *testing.T) {
	c := newCluster(t, 3, nil)
	waitFor(t, 15*time.Second, "3 voters", func() error { return c.agreed(3, 3) })
	ld := c.leader()
	var followers []*testNode
	for _, n := range c.live() {
		if n != ld {
			followers = append(followers, n)
		}
	}
	applied := startLoad(t, followers)
	waitFor(t, 10*time.Second, "load running", func() error {
		if n := applied.Load(); n < 20 {
			return fmt.Errorf("%d commands applied", n)
		}
		return nil
	})

	// The leader holds the join request until its Close has begun, so
	// that the join is always in flight when Close runs.
	inJoin := make(chan struct{})
	var once sync.Once
	hook := func() {
		once.Do(func() { close(inJoin) })
		<-ld.ctx.Done()
	}
	ld.hooks.join.Store(&hook)
	joiner := startJoiner(t, ld)
	thaw := stall(ld, followers[0])
	select {
	case <-inJoin:
	case <-time.After(scale(10 * time.Second)):
		t.Fatal("join request never reached the leader")
	}

	start := time.Now()
	err := ld.Close()
	took := time.Since(start)
	t.Logf("leader closed in %v", took)
	if err != nil {
		t.Fatalf("close leader: %v", err)
	}
	if took > scale(closeBound) {
		t.Fatalf("closing the leader took %v, want under %v", took, scale(closeBound))
	}
	thaw()
	// The survivors elect a leader and keep committing.
	before := applied.Load()
	waitFor(t, 15*time.Second, "commits after the leader closed", func() error {
		if n := applied.Load(); n < before+10 {
			return fmt.Errorf("%d commands since", n-before)
		}
		return nil
	})
	for _, n := range append(followers, joiner) {
		start := time.Now()
		if err := n.Close(); err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("close %s: %v", filepath.Base(n.dir), err)
		}
		if took := time.Since(start); took > scale(closeBound) {
			t.Errorf("closing %s took %v", filepath.Base(n.dir), took)
		}
	}
}

// stall makes f's Raft stop answering ld: f accepts ld's Raft streams but
// never reads them, so ld's heartbeats and appends wait for the
// transport's deadline. thaw restores f's Raft.
func stall(ld, f *testNode) (thaw func()) {
	stop := make(chan struct{})
	f.host.SetStreamHandler(raftProtocol, func(s network.Stream) {
		select {
		case <-stop:
		case <-f.ctx.Done():
		}
		s.Reset()
	})
	// New streams from ld now reach the stalling handler.
	f.host.Network().ClosePeer(ld.host.ID())
	return func() {
		f.host.SetStreamHandler(raftProtocol, f.handleRaft)
		close(stop)
	}
}

// startLoad makes every node in nodes apply commands in a loop until the
// test ends, and counts those committed.
func startLoad(t *testing.T, nodes []*testNode) *atomic.Int64 {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var applied atomic.Int64
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; ctx.Err() == nil; j++ {
				actx, acancel := context.WithTimeout(ctx, scale(5*time.Second))
				if _, err := n.Apply(actx, fmt.Appendf(nil, "load-%d-%d", i, j)); err == nil {
					applied.Add(1)
				} else if errors.Is(err, ErrClosed) {
					acancel()
					return
				}
				acancel()
			}
		}()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	return &applied
}

// startJoiner starts a fresh node joining through target, without waiting
// for it to become a member.
func startJoiner(t *testing.T, target *testNode) *testNode {
	cfg := withFSM(testConfig(t, filepath.Join(t.TempDir(), "joiner")))
	cfg.Peers = target.Addrs()
	cfg.Logger = testLogger(t, "joiner: ")
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Start(ctx)
	}()
	t.Cleanup(func() { cancel(); m.Close(); <-done })
	return &testNode{Mesh: m, dir: cfg.DataDir, fsm: cfg.FSM.(*logFSM), cfg: cfg}
}
