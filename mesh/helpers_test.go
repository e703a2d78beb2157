package mesh

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/tbfg/tbfg-node/mesh/meshtest"
)

// The shared pieces of a loopback test mesh.
var (
	testSecret = meshtest.Secret
	scale      = meshtest.Scale
	// waitFor polls cond until it returns nil or the deadline passes.
	waitFor = meshtest.WaitFor
)

// testLogger routes a node's logs to t.Log after prefix ("name: "), and
// checks that the test leaves no goroutine of the mesh behind.
func testLogger(t testing.TB, prefix string) *slog.Logger {
	checkNoLeak(t)
	return meshtest.Logger(t, strings.TrimSuffix(prefix, ": "))
}

// testNode is one in-process node with its data dir and state machine.
type testNode struct {
	*Mesh
	dir    string
	fsm    *logFSM
	cfg    Config
	listen string // the address it listened on, to restart on the same port
}

// testConfig is a node config on loopback with test timings.
func testConfig(t testing.TB, dir string) Config {
	return Config{
		DataDir:        dir,
		Secret:         meshtest.Secret,
		ListenAddrs:    []string{meshtest.Listen},
		Voter:          true,
		Timing:         TestTiming,
		RemoveAfter:    meshtest.RemoveAfter,
		GossipInterval: meshtest.GossipInterval,
		LocalStatus: func() NodeStatus {
			return NodeStatus{Systems: []string{"x86_64-linux"}, MaxBuilds: 2, Cores: 4, Version: "test"}
		},
	}
}

// startNode starts a node and registers its Close with the test.
func startNode(t testing.TB, cfg Config) *testNode {
	t.Helper()
	n, err := tryStart(t, cfg, scale(20*time.Second))
	if err != nil {
		t.Fatalf("start node in %s: %v", cfg.DataDir, err)
	}
	return n
}

func tryStart(t testing.TB, cfg Config, timeout time.Duration) (*testNode, error) {
	fsm := &logFSM{}
	cfg.FSM = fsm
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t, filepath.Base(cfg.DataDir)+": ")
	}
	m, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if err := meshtest.Start(t, m, timeout); err != nil {
		return nil, err
	}
	n := &testNode{Mesh: m, dir: cfg.DataDir, fsm: fsm, cfg: cfg}
	n.listen = n.listenAddr()
	return n, nil
}

// restart closes n and starts it again on the same data dir and port.
func (n *testNode) restart(t testing.TB) *testNode {
	t.Helper()
	cfg := n.cfg
	cfg.FSM = nil
	cfg.ListenAddrs = []string{n.listen}
	if err := n.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	return startNode(t, cfg)
}

func (n *testNode) listenAddr() string {
	for _, a := range n.host.Network().ListenAddresses() {
		if _, err := manet.ToIP(a); err == nil {
			return a.String()
		}
	}
	return ""
}

// cluster is a set of test nodes; node 0 bootstrapped the mesh.
type cluster struct {
	t     testing.TB
	nodes []*testNode
	mod   func(*Config)
}

func newCluster(t testing.TB, n int, mod func(*Config)) *cluster {
	c := &cluster{t: t, mod: mod}
	for range n {
		c.add()
	}
	return c
}

// add starts one more node: the first bootstraps, the others join through it.
func (c *cluster) add() *testNode {
	c.t.Helper()
	cfg := testConfig(c.t, filepath.Join(c.t.TempDir(), fmt.Sprintf("n%d", len(c.nodes))))
	if len(c.nodes) == 0 {
		cfg.Bootstrap = true
	} else {
		cfg.Peers = c.live()[0].Addrs()
	}
	if c.mod != nil {
		c.mod(&cfg)
	}
	n := startNode(c.t, cfg)
	c.nodes = append(c.nodes, n)
	return n
}

// live lists the nodes not closed.
func (c *cluster) live() []*testNode {
	var out []*testNode
	for _, n := range c.nodes {
		if n.ctx.Err() == nil {
			out = append(out, n)
		}
	}
	return out
}

// agreed checks that every live node sees the same leader and a
// configuration of want members with wantVoters voters.
func (c *cluster) agreed(want, wantVoters int) error {
	var leader string
	for i, n := range c.live() {
		l := n.Leader()
		if l == "" {
			return fmt.Errorf("%s has no leader", n.dir)
		}
		if i > 0 && l != leader {
			return fmt.Errorf("leaders differ: %s vs %s", l, leader)
		}
		leader = l
		ms := n.Members()
		voters := 0
		for _, m := range ms {
			if m.Suffrage == "voter" {
				voters++
			}
		}
		if len(ms) != want || voters != wantVoters {
			return fmt.Errorf("%s sees %d members, %d voters; want %d, %d", filepath.Base(n.dir), len(ms), voters, want, wantVoters)
		}
	}
	return nil
}

func (c *cluster) leader() *testNode {
	for _, n := range c.live() {
		if n.Leader() == n.ID() {
			return n
		}
	}
	return nil
}

func (c *cluster) follower() *testNode {
	for _, n := range c.live() {
		if l := n.Leader(); l != "" && l != n.ID() {
			return n
		}
	}
	return nil
}

// sameLogs checks that every live node's state machine holds the same log,
// and that it is want once repeated entries are collapsed: Apply is
// at-least-once, and retries after an ambiguous leader change may commit a
// command twice in a row.
func (c *cluster) sameLogs(want []string) error {
	var first []string
	for i, n := range c.live() {
		got := n.fsm.entries()
		if i == 0 {
			first = got
		}
		if !slices.Equal(got, first) {
			return fmt.Errorf("%s holds %d entries %v, another node %d", filepath.Base(n.dir), len(got), tail(got), len(first))
		}
		if got = slices.Compact(slices.Clone(got)); !slices.Equal(got, want) {
			return fmt.Errorf("%s holds %d distinct entries %v, want %d", filepath.Base(n.dir), len(got), tail(got), len(want))
		}
	}
	return nil
}

func tail(s []string) []string { return s[max(0, len(s)-3):] }

// apply commits cmd through n and fails the test on error.
func apply(t testing.TB, n *testNode, cmd string) {
	t.Helper()
	if err := meshtest.Apply(n, []byte(cmd)); err != nil {
		t.Fatalf("apply %q on %s: %v", cmd, filepath.Base(n.dir), err)
	}
}

// partition blocks all traffic between the nodes in a and those in b.
func partition(a, b []*testNode) {
	block := func(from *testNode, to []*testNode) {
		var ids []peer.ID
		for _, n := range to {
			ids = append(ids, n.host.ID())
		}
		from.gater.setBlocked(ids)
		for _, id := range ids {
			from.host.Network().ClosePeer(id)
		}
	}
	for _, n := range a {
		block(n, b)
	}
	for _, n := range b {
		block(n, a)
	}
}

// heal lifts every partition.
func heal(nodes []*testNode) {
	for _, n := range nodes {
		n.gater.setBlocked(nil)
	}
}

// meshGoroutines lists the goroutines running code of this package or of
// hashicorp/raft, other than the caller's.
func meshGoroutines() []string {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "meshGoroutines") || strings.Contains(g, "testing.tRunner") && !strings.Contains(g, "tbfg-node/mesh.(") {
			continue
		}
		if strings.Contains(g, "tbfg-node/mesh.(") || strings.Contains(g, "hashicorp/raft.") || strings.Contains(g, "go-libp2p-pubsub.") {
			out = append(out, g)
		}
	}
	return out
}

// leakChecked holds the tests that checkNoLeak already registered.
var leakChecked sync.Map

// checkNoLeak makes t fail if goroutines of the mesh or Raft remain once
// its cleanups (every node's Close among them) have run: registered before
// the first node's Close, its cleanup runs after the last one. testLogger
// calls it, so every test that starts a node is checked, and a goroutine
// left behind is blamed on the test that left it.
func checkNoLeak(t testing.TB) {
	if _, loaded := leakChecked.LoadOrStore(t, true); loaded {
		return
	}
	t.Cleanup(func() {
		deadline := time.Now().Add(scale(10 * time.Second))
		var g []string
		for time.Now().Before(deadline) {
			if g = meshGoroutines(); len(g) == 0 {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Errorf("%d goroutines of the mesh left after the test:\n%s", len(g), strings.Join(g, "\n\n"))
	})
}

// goroutineID returns the ID in the header of a goroutine's stack, as
// meshGoroutines lists it ("goroutine 12 [select]:"), "" if none.
func goroutineID(stack string) string {
	id, _, _ := strings.Cut(strings.TrimPrefix(stack, "goroutine "), " ")
	return id
}

// goroutineIDs returns the set of IDs of the given stacks.
func goroutineIDs(stacks []string) map[string]bool {
	ids := map[string]bool{}
	for _, g := range stacks {
		ids[goroutineID(g)] = true
	}
	return ids
}
