package scheduler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/tbfg/tbfg-node/internal/poll"
)

// raftApplier commits commands with raft.Apply on the leader, as mesh.Mesh
// does after forwarding.
type raftApplier struct{ r *raft.Raft }

func (a raftApplier) Apply(ctx context.Context, cmd []byte) ([]byte, error) {
	timeout := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	f := a.r.Apply(cmd, timeout)
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("raft apply: %w", err)
	}
	switch resp := f.Response().(type) {
	case nil:
		return nil, nil
	case []byte:
		return resp, nil
	case error:
		return nil, resp
	default:
		return nil, fmt.Errorf("unexpected FSM response %T", resp)
	}
}

// clusterApplier commits on whichever node leads, retrying across leader
// changes until ctx ends, as mesh.Mesh does.
type clusterApplier struct {
	t testing.TB
	c *testCluster
}

func (a clusterApplier) Apply(ctx context.Context, cmd []byte) ([]byte, error) {
	for {
		resp, err := raftApplier{a.c.rafts[a.c.currentLeader()]}.Apply(ctx, cmd)
		if !errors.Is(err, raft.ErrNotLeader) && !errors.Is(err, raft.ErrLeadershipLost) &&
			!errors.Is(err, raft.ErrLeadershipTransferInProgress) {
			return resp, err
		}
		a.t.Logf("retrying on a new leader: %v", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond): // polling for a new leader
		}
	}
}

// currentLeader returns the index of the node that believes it leads, or 0.
func (c *testCluster) currentLeader() int {
	for i, r := range c.rafts {
		if r.State() == raft.Leader {
			return i
		}
	}
	return 0
}

// testCluster is n Raft nodes with in-memory stores and transport.
type testCluster struct {
	rafts []*raft.Raft
	fsms  []*FSM
	trans []*raft.InmemTransport
}

// testWriter routes Raft's logs to t.Log.
type testWriter struct {
	t      testing.TB
	prefix string
}

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(w.prefix + string(p)); return len(p), nil }

func raftConfig(t testing.TB, id string) *raft.Config {
	conf := raft.DefaultConfig()
	conf.LocalID = raft.ServerID(id)
	conf.HeartbeatTimeout = 100 * time.Millisecond
	conf.ElectionTimeout = 100 * time.Millisecond
	conf.LeaderLeaseTimeout = 100 * time.Millisecond
	conf.CommitTimeout = 5 * time.Millisecond
	conf.TrailingLogs = 2 // a snapshot compacts the log, so late members need it
	conf.Logger = hclog.New(&hclog.LoggerOptions{Name: id, Level: hclog.Warn, Output: testWriter{t, id + ": "}})
	return conf
}

func newTestCluster(t *testing.T, n int) *testCluster {
	c := &testCluster{}
	var servers []raft.Server
	var transports []*raft.InmemTransport
	for i := range n {
		addr, tr := raft.NewInmemTransport(raft.ServerAddress(fmt.Sprintf("node%d", i)))
		transports = append(transports, tr)
		servers = append(servers, raft.Server{ID: raft.ServerID(addr), Address: addr})
	}
	c.trans = transports
	for i, a := range transports {
		for j, b := range transports {
			if i != j {
				a.Connect(b.LocalAddr(), b)
			}
		}
	}
	for i := range n {
		conf := raftConfig(t, string(servers[i].ID))
		logs, snaps, fsm := raft.NewInmemStore(), raft.NewInmemSnapshotStore(), NewFSM(nil)
		if err := raft.BootstrapCluster(conf, logs, logs, snaps, transports[i], raft.Configuration{Servers: servers}); err != nil {
			t.Fatal(err)
		}
		r, err := raft.NewRaft(conf, fsm, logs, logs, snaps, transports[i])
		if err != nil {
			t.Fatal(err)
		}
		c.rafts, c.fsms = append(c.rafts, r), append(c.fsms, fsm)
	}
	t.Cleanup(func() {
		for _, r := range c.rafts {
			_ = r.Shutdown().Error()
		}
	})
	return c
}

// leader waits for a leader and returns its index.
func (c *testCluster) leader(t *testing.T) int {
	t.Helper()
	var i int
	waitFor(t, "a leader", func() bool {
		for i = range c.rafts {
			if c.rafts[i].State() == raft.Leader {
				return true
			}
		}
		return false
	})
	return i
}

// waitFor polls cond until it holds or 10 seconds pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	poll.Fatal(t, 10*time.Second, 5*time.Millisecond, what, func() error {
		if !cond() {
			return errors.New("not yet")
		}
		return nil
	})
}

func TestRaftSubmitQueuedOnceEverywhere(t *testing.T) {
	c := newTestCluster(t, 3)
	c.leader(t)
	app := clusterApplier{t, c}
	ctx := context.Background()
	if _, err := app.Apply(ctx, Encode(joined("n1", 2, x86))); err != nil {
		t.Fatal(err)
	}
	graph := []Derivation{drv("a", x86), drv("b", x86, "a"), drv("c", x86, "a", "b")}
	for range 2 { // the same graph submitted from two places
		resp, err := app.Apply(ctx, Encode(&Submit{Time: t0, Submitter: "cli", Derivations: graph}))
		if err != nil {
			t.Fatal(err)
		}
		if ids, _ := DecodeSubmitResponse(resp); len(ids) != 3 || ids[2] != 3 {
			t.Fatalf("ids %v", ids)
		}
	}
	if _, err := app.Apply(ctx, Encode(&Submit{Derivations: []Derivation{drv("z", x86, "missing")}})); err == nil {
		t.Fatal("invalid submit was accepted through raft")
	}
	c.waitConverged(t, c.fsms)
	for i := range c.fsms {
		c.fsms[i].Read(func(s *State) {
			if s.NumBuilds() != 3 || s.Counts()[BuildQueued] != 3 {
				t.Fatalf("node %d: %d builds, counts %v", i, s.NumBuilds(), s.Counts())
			}
		})
	}
}

// waitConverged waits until every FSM has the same state.
func (c *testCluster) waitConverged(t *testing.T, fsms []*FSM) {
	t.Helper()
	waitFor(t, "every node to reach the same state", func() bool {
		var first []byte
		for i, f := range fsms {
			var b []byte
			f.Read(func(s *State) { b = encodeState(t, s) })
			if i > 0 && string(b) != string(first) {
				return false
			}
			first = b
		}
		return true
	})
}

// liveNodes is a node-view provider whose nodes can be killed.
type liveNodes struct {
	mu   sync.Mutex
	live map[string]bool
}

func (l *liveNodes) views() []NodeView {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []NodeView
	for id, ok := range l.live {
		if ok {
			out = append(out, NodeView{ID: id, FreeDisk: 1 << 40})
		}
	}
	return out
}

func (l *liveNodes) kill(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.live[id] = false
}

// TestLeaderReallocatesAfterNodeLost: the allocation loop gives a build to a
// node; when that node is lost, the build is re-queued and goes to the other.
func TestLeaderReallocatesAfterNodeLost(t *testing.T) {
	c := newTestCluster(t, 3)
	li := c.leader(t)
	app := clusterApplier{t, c}
	ctx, cancel := context.WithCancel(context.Background())
	for _, n := range []string{"na", "nb"} {
		if _, err := app.Apply(ctx, Encode(joined(n, 1, x86))); err != nil {
			t.Fatal(err)
		}
	}
	nodes := &liveNodes{live: map[string]bool{"na": true, "nb": true}}
	var clockMu sync.Mutex
	now := t0
	leader, err := NewLeader(LeaderConfig{FSM: c.fsms[li], Applier: app, Nodes: nodes.views,
		Now: func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = leader.Run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })

	follower := (li + 1) % 3
	watchA, watchB := c.fsms[follower].WatchNode("na"), c.fsms[follower].WatchNode("nb")
	defer watchA.Close()
	defer watchB.Close()
	if _, err := app.Apply(ctx, Encode(&Submit{Time: t0, Derivations: []Derivation{drv("a", x86)}})); err != nil {
		t.Fatal(err)
	}
	first := c.waitAllocated(t, follower, 1, "")
	select {
	case <-map[string]*Subscription{"na": watchA, "nb": watchB}[first].C:
	case <-time.After(10 * time.Second):
		t.Fatalf("node %s was not notified of its allocation", first)
	}
	nodes.kill(first)
	if _, err := app.Apply(ctx, Encode(&NodeLost{Time: t0, Node: first})); err != nil {
		t.Fatal(err)
	}
	second := c.waitAllocated(t, follower, 1, first)
	if second == first {
		t.Fatalf("re-allocated to the lost node")
	}
}

// waitAllocated waits until build id is allocated on node i's state to a
// node other than not, and returns that node.
func (c *testCluster) waitAllocated(t *testing.T, i int, id BuildID, not string) string {
	var node string
	waitFor(t, fmt.Sprintf("build %d allocated elsewhere than %q", id, not), func() bool {
		c.fsms[i].Read(func(s *State) {
			b, _ := s.Build(id)
			node = ""
			if b.State == BuildAllocated {
				node = b.Node
			}
		})
		return node != "" && node != not
	})
	return node
}

// memSink is an in-memory raft.SnapshotSink.
type memSink struct {
	data     []byte
	canceled bool
}

func (m *memSink) Write(p []byte) (int, error) { m.data = append(m.data, p...); return len(p), nil }
func (m *memSink) Close() error                { return nil }
func (m *memSink) ID() string                  { return "mem" }
func (m *memSink) Cancel() error               { m.canceled = true; return nil }

func TestFSMSnapshotRestore(t *testing.T) {
	f := NewFSM(nil)
	apply := func(idx uint64, c Command) any {
		return f.Apply(&raft.Log{Index: idx, Type: raft.LogCommand, Data: Encode(c)})
	}
	apply(1, joined("n1", 2, x86))
	drvs := distribution(300, []string{x86, aarch}, 7)
	if resp, ok := apply(2, &Submit{Node: "n1", Derivations: drvs, Items: sourceItems(drvs)}).([]byte); !ok || len(resp) == 0 {
		t.Fatal("submit response is not the build ids")
	}
	if err, ok := apply(3, &Started{Build: 1, Node: "n1"}).(error); !ok || err == nil {
		t.Fatal("invalid command did not return an error")
	}
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	g := NewFSM(nil)
	changes := g.Changes()
	defer changes.Close()
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.data))); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changes.C:
	default:
		t.Fatal("restore did not notify subscribers")
	}
	var a, b []byte
	f.Read(func(s *State) { a = encodeState(t, s) })
	g.Read(func(s *State) { b = encodeState(t, s) })
	if string(a) != string(b) {
		t.Fatal("restored state differs")
	}
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.data[:len(sink.data)/2]))); err == nil {
		t.Fatal("truncated snapshot restored without error")
	}
}

// TestRaftNewMemberCatchesUpBySnapshot: a node added after the log was
// compacted receives the leader's snapshot (FSM.Restore) and ends with the
// same state and applied index.
func TestRaftNewMemberCatchesUpBySnapshot(t *testing.T) {
	c := newTestCluster(t, 3)
	c.leader(t)
	app := clusterApplier{t, c}
	ctx := context.Background()
	if _, err := app.Apply(ctx, Encode(joined("n1", 2, x86))); err != nil {
		t.Fatal(err)
	}
	// A Compact raises the state to format 2, whose snapshots keep the index.
	if _, err := app.Apply(ctx, Encode(&Compact{Time: t0, Before: t0, Max: 1})); err != nil {
		t.Fatal(err)
	}
	drvs := distribution(200, []string{x86}, 5)
	cmds, err := SplitSubmit(Submit{Time: t0, Node: "n1", Derivations: drvs, Items: sourceItems(drvs)}, 20)
	if err != nil {
		t.Fatal(err)
	}
	for i := range cmds {
		if _, err := app.Apply(ctx, Encode(&cmds[i])); err != nil {
			t.Fatal(err)
		}
	}
	c.waitConverged(t, c.fsms)
	for _, r := range c.rafts {
		if err := r.Snapshot().Error(); err != nil {
			t.Fatal(err)
		}
	}

	addr, tr := raft.NewInmemTransport("late")
	for _, other := range c.trans {
		tr.Connect(other.LocalAddr(), other)
		other.Connect(addr, tr)
	}
	conf := raftConfig(t, "late")
	logs, snaps, fsm := raft.NewInmemStore(), raft.NewInmemSnapshotStore(), NewFSM(nil)
	r, err := raft.NewRaft(conf, fsm, logs, logs, snaps, tr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Shutdown().Error() })
	waitFor(t, "the new member to be added", func() bool {
		err := c.rafts[c.currentLeader()].AddVoter("late", addr, 0, 10*time.Second).Error()
		if err != nil {
			t.Logf("add voter: %v", err)
		}
		return err == nil
	})
	c.waitConverged(t, append(c.fsms, fsm))
	// Raft records the installed snapshot just after FSM.Restore returns.
	waitFor(t, "the new member to have installed a snapshot", func() bool {
		return r.Stats()["last_snapshot_index"] != "0"
	})
	// No command followed the snapshot: Index must come from it (WaitIndex
	// and /readyz read it).
	if got, want := fsm.Index(), c.fsms[0].Index(); got != want || got == 0 {
		t.Fatalf("Index after catching up by snapshot: %d, want %d", got, want)
	}
}
