package mesh

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestClusterGrowsFromOneToFive(t *testing.T) {
	c := newCluster(t, 1, nil)
	wantVoters := []int{1, 1, 3, 3, 5}
	for n := 1; n <= 5; n++ {
		if n > 1 {
			c.add()
		}
		waitFor(t, 15*time.Second, fmt.Sprintf("%d nodes agree", n), func() error { return c.agreed(n, wantVoters[n-1]) })
	}
	var want []string
	for i, n := range c.nodes {
		cmd := fmt.Sprintf("cmd-%d", i)
		apply(t, n, cmd)
		want = append(want, cmd)
	}
	waitFor(t, 5*time.Second, "logs replicated", func() error { return c.sameLogs(want) })
}

func TestFollowerApplyReturnsResponseAndFSMError(t *testing.T) {
	c := newCluster(t, 2, nil)
	waitFor(t, 10*time.Second, "2 nodes", func() error { return c.agreed(2, 1) })
	f := c.follower()
	ctx, cancel := context.WithTimeout(context.Background(), scale(5*time.Second))
	defer cancel()
	resp, err := f.Apply(ctx, []byte("one"))
	if err != nil || string(resp) != "1" {
		t.Fatalf("apply: resp %q, err %v; want \"1\"", resp, err)
	}
	_, err = f.Apply(ctx, []byte("fail-this"))
	var fe *FSMError
	if !errors.As(err, &fe) || fe.Msg != "refused fail-this" {
		t.Fatalf("apply of failing command: %v; want *FSMError", err)
	}
}

func TestLeaderFailover(t *testing.T) {
	c := newCluster(t, 3, nil)
	waitFor(t, 15*time.Second, "3 voters", func() error { return c.agreed(3, 3) })
	var want []string
	for i := range 10 {
		want = append(want, fmt.Sprint("before-", i))
		apply(t, c.follower(), want[len(want)-1])
	}
	old := c.leader()
	start := time.Now()
	old.Close()
	waitFor(t, 3*time.Second, "new leader", func() error {
		for _, n := range c.live() {
			if l := n.Leader(); l == "" || l == old.ID() {
				return fmt.Errorf("%s sees leader %q", filepath.Base(n.dir), l)
			}
		}
		return nil
	})
	t.Logf("new leader after %v", time.Since(start))
	for i := range 5 {
		want = append(want, fmt.Sprint("after-", i))
		apply(t, c.live()[i%2], want[len(want)-1])
	}
	waitFor(t, 5*time.Second, "logs survive", func() error { return c.sameLogs(want) })
}

func TestPartitionedMinorityCannotCommit(t *testing.T) {
	c := newCluster(t, 3, nil)
	waitFor(t, 15*time.Second, "3 voters", func() error { return c.agreed(3, 3) })
	apply(t, c.follower(), "base")
	minority := c.leader()
	var majority []*testNode
	for _, n := range c.live() {
		if n != minority {
			majority = append(majority, n)
		}
	}
	partition([]*testNode{minority}, majority)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_, err := minority.Apply(ctx, []byte("minority"))
	cancel()
	if !errors.Is(err, ErrNoLeader) {
		t.Fatalf("apply on the isolated old leader: %v; want ErrNoLeader", err)
	}
	apply(t, majority[0], "majority")
	heal(c.live())
	waitFor(t, 10*time.Second, "healed", func() error { return c.sameLogs([]string{"base", "majority"}) })
	if slices.Contains(minority.fsm.entries(), "minority") {
		t.Fatal("minority command was committed")
	}
}

func TestRestartedNodeRejoinsWithState(t *testing.T) {
	c := newCluster(t, 3, nil)
	waitFor(t, 15*time.Second, "3 voters", func() error { return c.agreed(3, 3) })
	apply(t, c.leader(), "one")
	f := c.follower()
	idx := slices.Index(c.nodes, f)
	id := f.ID()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	apply(t, c.leader(), "two")
	c.nodes[idx] = f.restart(t)
	if c.nodes[idx].ID() != id {
		t.Fatalf("identity changed across restart: %s -> %s", id, c.nodes[idx].ID())
	}
	apply(t, c.nodes[idx], "three")
	waitFor(t, 10*time.Second, "restarted node caught up", func() error { return c.sameLogs([]string{"one", "two", "three"}) })
	waitFor(t, 10*time.Second, "configuration", func() error { return c.agreed(3, 3) })
}

func TestWrongSecretCannotConnectOrJoin(t *testing.T) {
	c := newCluster(t, 1, nil)
	cfg := testConfig(t, filepath.Join(t.TempDir(), "intruder"))
	cfg.Secret = []byte("another secret, 32 bytes long!!!")
	cfg.Peers = c.nodes[0].Addrs()
	_, err := tryStart(t, cfg, scale(8*time.Second))
	if !errors.Is(err, ErrSecretRejected) {
		t.Fatalf("start with wrong secret: %v; want ErrSecretRejected", err)
	}
	t.Logf("error shown: %v", err)
	if n := len(c.nodes[0].host.Network().Peers()); n != 0 {
		t.Fatalf("member has %d connections, want 0", n)
	}
	if n := len(c.nodes[0].Members()); n != 1 {
		t.Fatalf("mesh has %d members, want 1", n)
	}
}

func TestForeignHistoryIsWipedOnJoin(t *testing.T) {
	c := newCluster(t, 2, nil)
	waitFor(t, 10*time.Second, "2 nodes", func() error { return c.agreed(2, 1) })
	apply(t, c.leader(), "mesh-a")
	cfg := testConfig(t, filepath.Join(t.TempDir(), "foreign"))
	cfg.Bootstrap = true
	x := startNode(t, cfg)
	waitFor(t, 5*time.Second, "foreign leader", func() error {
		if x.Leader() != x.ID() {
			return errors.New("not leader yet")
		}
		return nil
	})
	apply(t, x, "mesh-b")
	x.cfg.Bootstrap = false
	x.cfg.Peers = c.nodes[0].Addrs()
	x = x.restart(t)
	c.nodes = append(c.nodes, x)
	waitFor(t, 15*time.Second, "joined", func() error { return c.agreed(3, 3) })
	apply(t, x, "from-x")
	waitFor(t, 10*time.Second, "same state", func() error { return c.sameLogs([]string{"mesh-a", "from-x"}) })
}

func TestTwoFreshNodesWithoutBootstrapFormNoMesh(t *testing.T) {
	checkNoLeak(t) // a logs nowhere: check after its Close too
	a := testConfig(t, filepath.Join(t.TempDir(), "a"))
	b := testConfig(t, filepath.Join(t.TempDir(), "b"))
	na, err := New(withFSM(a))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { na.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	errA := make(chan error, 1)
	go func() { errA <- na.Start(ctx) }()
	waitFor(t, 5*time.Second, "a listening", func() error {
		if len(na.Addrs()) == 0 {
			return errors.New("no address")
		}
		return nil
	})
	b.Peers = na.Addrs()
	_, errB := tryStart(t, b, 2*time.Second)
	if errA := <-errA; errB == nil || errA == nil { // one read: errA gets one value
		t.Fatalf("fresh nodes without bootstrap started: a %v, b %v", errA, errB)
	}
}

func withFSM(c Config) Config {
	c.FSM = &logFSM{}
	return c
}

func TestBootstrapExpect(t *testing.T) {
	var nodes []*testNode
	cfgs := make([]Config, 3)
	ms := make([]*Mesh, 3)
	for i := range cfgs {
		cfgs[i] = withFSM(testConfig(t, filepath.Join(t.TempDir(), fmt.Sprint("e", i))))
		cfgs[i].BootstrapExpect = 3
		cfgs[i].Logger = testLogger(t, fmt.Sprint("e", i, ": "))
		m, err := New(cfgs[i])
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		ms[i] = m
	}
	// Node i dials node i-1: all learn of each other only through these
	// connections, started concurrently.
	ctx, cancel := context.WithTimeout(context.Background(), scale(20*time.Second))
	defer cancel()
	errs := make(chan error, 3)
	go func() { errs <- ms[0].Start(ctx) }()
	for i := 1; i < 3; i++ {
		waitFor(t, 5*time.Second, "listening", func() error {
			if len(ms[i-1].Addrs()) == 0 {
				return errors.New("no address")
			}
			return nil
		})
		ms[i].cfg.Peers = ms[i-1].Addrs()
		go func() { errs <- ms[i].Start(ctx) }()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatalf("start: %v", err)
		}
	}
	for i, m := range ms {
		nodes = append(nodes, &testNode{Mesh: m, fsm: cfgs[i].FSM.(*logFSM), dir: cfgs[i].DataDir})
	}
	c := &cluster{t: t, nodes: nodes}
	waitFor(t, 15*time.Second, "one cluster of 3 voters", func() error { return c.agreed(3, 3) })
}

func TestLeave(t *testing.T) {
	c := newCluster(t, 4, nil)
	waitFor(t, 15*time.Second, "4 nodes", func() error { return c.agreed(4, 3) })
	ld := c.leader()
	ctx, cancel := context.WithTimeout(context.Background(), scale(10*time.Second))
	defer cancel()
	if err := ld.Leave(ctx); err != nil {
		t.Fatalf("leader leave: %v", err)
	}
	ld.Close()
	waitFor(t, 10*time.Second, "3 nodes after leader left", func() error { return c.agreed(3, 3) })
	f := c.follower()
	if err := f.Leave(ctx); err != nil {
		t.Fatalf("follower leave: %v", err)
	}
	f.Close()
	waitFor(t, 10*time.Second, "2 nodes after follower left", func() error { return c.agreed(2, 1) })
}

func TestSilentNodeIsRemoved(t *testing.T) {
	c := newCluster(t, 4, quickRemoval)
	waitFor(t, 15*time.Second, "4 nodes", func() error { return c.agreed(4, 3) })
	var victim *testNode
	for _, n := range c.live() {
		if n.Leader() != n.ID() && slices.ContainsFunc(n.Members(), func(m Member) bool { return m.ID == n.ID() && m.Suffrage == "voter" }) {
			victim = n
		}
	}
	if victim == nil {
		t.Fatal("no follower voter")
	}
	victim.Close()
	// The silent voter goes; the non-voter is promoted to keep 3 voters.
	waitFor(t, 15*time.Second, "silent voter removed", func() error { return c.agreed(3, 3) })
}

func TestGossipFeedsMembers(t *testing.T) {
	c := newCluster(t, 3, nil)
	waitFor(t, 15*time.Second, "3 voters", func() error { return c.agreed(3, 3) })
	waitFor(t, 10*time.Second, "every node sees every status", func() error {
		for _, n := range c.live() {
			for _, m := range n.Members() {
				if m.Status == nil || m.LastSeen.IsZero() || m.Status.Cores != 4 || len(m.Addresses) == 0 {
					return fmt.Errorf("%s: member %s: %+v", filepath.Base(n.dir), m.ID, m)
				}
			}
		}
		return nil
	})
}

func TestCloseStopsEverything(t *testing.T) {
	// Only goroutines started by this test count: one left by an earlier
	// test fails that test's own check (checkNoLeak), not this one.
	before := goroutineIDs(meshGoroutines())
	t.Run("cluster", func(t *testing.T) {
		c := newCluster(t, 3, nil)
		waitFor(t, 15*time.Second, "3 voters", func() error { return c.agreed(3, 3) })
		apply(t, c.follower(), "x")
		for _, n := range c.nodes {
			if err := n.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			if err := n.Close(); err != nil {
				t.Fatalf("second close: %v", err)
			}
		}
	})
	waitFor(t, 10*time.Second, "no goroutine left", func() error {
		var left []string
		for _, g := range meshGoroutines() {
			if !before[goroutineID(g)] {
				left = append(left, g)
			}
		}
		if len(left) > 0 {
			return fmt.Errorf("%d goroutines left, first:\n%s", len(left), left[0])
		}
		return nil
	})
}

func TestNodeRemovedWhileCutOffRejoinsWhenReachable(t *testing.T) {
	c := newCluster(t, 3, quickRemoval)
	waitFor(t, 15*time.Second, "3 voters", func() error { return c.agreed(3, 3) })
	cut := c.follower()
	var rest []*testNode
	for _, n := range c.live() {
		if n != cut {
			rest = append(rest, n)
		}
	}
	partition([]*testNode{cut}, rest)
	waitFor(t, 15*time.Second, "cut-off node removed", func() error {
		for _, n := range rest {
			if slices.ContainsFunc(n.Members(), func(m Member) bool { return m.ID == cut.ID() }) {
				return fmt.Errorf("%s still lists it", filepath.Base(n.dir))
			}
		}
		return nil
	})
	apply(t, rest[0], "while-cut")
	heal(c.live())
	waitFor(t, 30*time.Second, "rejoined", func() error { return c.agreed(3, 3) })
	waitFor(t, 10*time.Second, "caught up", func() error { return c.sameLogs([]string{"while-cut"}) })
}

// quickRemoval removes a member after 2s without gossip, gossiping every
// 200ms so that a live member is never that silent.
func quickRemoval(cfg *Config) {
	cfg.RemoveAfter = 2 * time.Second
	cfg.GossipInterval = 200 * time.Millisecond
}

func TestNonVoterIsNeverPromoted(t *testing.T) {
	c := newCluster(t, 2, nil)
	laptopCfg := func(cfg *Config) { cfg.Voter = false }
	c.mod = laptopCfg
	laptop := c.add()
	// Two of three may vote: one voter, as an even count adds no safety.
	waitFor(t, 15*time.Second, "3 nodes, 1 voter", func() error { return c.agreed(3, 1) })
	c.mod = nil
	c.add()
	waitFor(t, 15*time.Second, "4 nodes, 3 voters", func() error { return c.agreed(4, 3) })
	for _, m := range c.nodes[0].Members() {
		if m.ID == laptop.ID() && m.Suffrage != "nonvoter" {
			t.Fatalf("node started with Voter=false is a %s", m.Suffrage)
		}
	}
}

func TestEffectiveTarget(t *testing.T) {
	tests := []struct{ n, eligible, want int }{
		{1, 1, 1}, {2, 2, 1}, {3, 3, 3}, {3, 2, 1}, {4, 4, 3}, {5, 5, 5},
		{5, 4, 3}, {7, 7, 5}, {6, 1, 1}, {3, 0, 1},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d servers %d eligible", tt.n, tt.eligible), func(t *testing.T) {
			if got := effectiveTarget(tt.n, tt.eligible); got != tt.want {
				t.Fatalf("effectiveTarget = %d, want %d", got, tt.want)
			}
		})
	}
}
