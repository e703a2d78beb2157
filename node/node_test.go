package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/poll"
	"github.com/tbfg/tbfg-node/internal/testlog"
	"github.com/tbfg/tbfg-node/node/adminapi"
	"github.com/tbfg/tbfg-node/node/datadir"
)

// loopbackConfig is a node on loopback with short timings and no mDNS.
func loopbackConfig(t *testing.T, name string, mode Mode, dir string) Config {
	c := DefaultConfig()
	c.DataDir, c.Mode = dir, mode
	c.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	c.MDNS = false
	c.RaftProfile = ProfileTest
	c.GossipInterval = 200 * time.Millisecond
	c.Logger = testlog.NewAt(t, name, slog.LevelInfo)
	c.SubstituteListen = "127.0.0.1:0"
	c.HTTPListen = "127.0.0.1:0"
	c.Advertise = false
	// The queue tests watch allocations that nothing runs; the tests of
	// builds turn the agent on.
	c.withoutAgent = true
	return c
}

// running is a node started by startNode.
type running struct {
	n    *Node
	stop context.CancelFunc
	done chan error
}

// startNode runs a node built by New and waits until it is a member. The
// node is stopped at the end of the test unless the test stops it first.
func startNode(t *testing.T, cfg Config) *running {
	t.Helper()
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{n: n, stop: cancel, done: make(chan error, 1)}
	go func() { r.done <- n.Run(ctx) }()
	t.Cleanup(func() { r.shutdown(t) })
	select {
	case <-n.Ready():
	case err := <-r.done:
		r.done <- err
		t.Fatalf("node stopped before it was ready: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("node not ready within 30s")
	}
	return r
}

// shutdown stops the node and returns Run's error; it may be called twice.
func (r *running) shutdown(t *testing.T) error {
	r.stop()
	select {
	case err, ok := <-r.done:
		if ok {
			close(r.done)
		}
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("node did not stop within 30s")
		return nil
	}
}

// TestFailedInitCanBeRetried checks that an init whose start fails (here:
// the guix executor without guix) leaves no mesh secret, so that running
// init again creates the mesh: with the secret stored, init would refuse and
// run would wait for a leader that was never bootstrapped.
func TestFailedInitCanBeRetried(t *testing.T) {
	dir := t.TempDir()
	cfg := loopbackConfig(t, "n1", ModeInit, dir)
	cfg.Executor, cfg.Guix, cfg.SubstituteListen = ExecutorGuix, filepath.Join(dir, "no-guix"), "127.0.0.1:1"
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "--executor guix") {
		t.Fatalf("Run = %v, want an error naming --executor guix", err)
	}
	if _, err := os.Stat(filepath.Join(dir, datadir.SecretFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("failed init left %s (%v): init could not be run again", datadir.SecretFile, err)
	}
	startNode(t, loopbackConfig(t, "n1-again", ModeInit, dir))
	if _, err := os.Stat(filepath.Join(dir, datadir.SecretFile)); err != nil {
		t.Errorf("running node: %v", err)
	}
}

func TestNodeInitRunsAndRestarts(t *testing.T) {
	dir := t.TempDir()
	r := startNode(t, loopbackConfig(t, "n1", ModeInit, dir))
	c := adminapi.NewClient(dir)
	defer c.Close()
	waitUntil(t, "one-node mesh led by itself after init", func() error {
		st, err := c.Status(context.Background())
		if err == nil && (st.State != adminapi.StateRunning || st.ID == "" || st.Leader != st.ID || st.Members != 1 || st.Voters != 1) {
			err = fmt.Errorf("status %+v", st)
		}
		return err
	})
	if _, err := New(loopbackConfig(t, "again", ModeInit, dir)); !errors.Is(err, ErrInitialised) {
		t.Errorf("second init: %v, want ErrInitialised", err)
	}
	second, err := New(loopbackConfig(t, "second", ModeRun, dir))
	if err != nil {
		t.Fatal(err)
	}
	if err := second.Run(context.Background()); !errors.Is(err, datadir.ErrLocked) {
		t.Errorf("second process on the data dir: %v, want ErrLocked", err)
	}
	if err := r.shutdown(t); err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
	if err := r.n.Run(context.Background()); !errors.Is(err, ErrRunTwice) {
		t.Errorf("second Run = %v, want ErrRunTwice", err)
	}
	if _, err := os.Stat(filepath.Join(dir, datadir.AdminSocket)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("admin socket left after stop: %v", err)
	}
	if _, err := c.Status(context.Background()); !errors.Is(err, adminapi.ErrNotRunning) {
		t.Errorf("status of a stopped node: %v, want adminapi.ErrNotRunning", err)
	}
	startNode(t, loopbackConfig(t, "n1-restart", ModeRun, dir))
	waitUntil(t, "restarted node leads again", func() error {
		st, err := c.Status(context.Background())
		if err == nil && (st.ID == "" || st.Leader != st.ID) {
			err = errors.New("not leading")
		}
		return err
	})
}

func TestNodeJoinsByPeerAndLeaves(t *testing.T) {
	dir1, dir2 := t.TempDir(), t.TempDir()
	first := startNode(t, loopbackConfig(t, "n1", ModeInit, dir1))
	cfg := loopbackConfig(t, "n2", ModeJoin, dir2)
	cfg.Secret = first.n.Secret()
	cfg.Peers = first.n.Addrs()
	second := startNode(t, cfg)
	c1, c2 := adminapi.NewClient(dir1), adminapi.NewClient(dir2)
	defer c1.Close()
	defer c2.Close()
	for _, c := range []*adminapi.Client{c1, c2} {
		waitUntil(t, "both nodes listed with gossip", func() error { return sameMembers(c, first.n.ID(), second.n.ID()) })
	}
	// The same join command again, without --peer: the node just runs and
	// finds its mesh from its own state.
	id := second.n.ID()
	if err := second.shutdown(t); err != nil {
		t.Fatal(err)
	}
	cfg = loopbackConfig(t, "n2-restart", ModeJoin, dir2)
	cfg.Secret = first.n.Secret()
	second = startNode(t, cfg)
	if second.n.ID() != id {
		t.Fatalf("restarted node has ID %s, want %s", second.n.ID(), id)
	}
	waitUntil(t, "restarted node back with gossip", func() error { return sameMembers(c2, first.n.ID(), id) })
	if res, err := c2.Leave(context.Background()); err != nil || res.ID != id {
		t.Fatalf("Leave = %+v, %v; want ID %s", res, err, id)
	}
	select {
	case err := <-second.done:
		second.done <- err
		if err != nil {
			t.Fatalf("Run after leave = %v, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("node still running 30s after leave")
	}
	waitUntil(t, "first node alone after leave", func() error { return sameMembers(c1, first.n.ID()) })
}

// sameMembers checks that c's node lists exactly ids, each with gossip.
func sameMembers(c *adminapi.Client, ids ...string) error {
	nodes, err := c.Nodes(context.Background())
	if err != nil {
		return err
	}
	if len(nodes) != len(ids) {
		return errors.New("wrong number of members")
	}
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	for _, n := range nodes {
		if !want[n.ID] || n.NodeStatus == nil || n.LastSeen == nil {
			return errors.New("member " + n.ID + " unknown or without gossip")
		}
	}
	return nil
}

func waitUntil(t *testing.T, what string, cond func() error) {
	t.Helper()
	poll.Fatal(t, 30*time.Second, 50*time.Millisecond, what, cond)
}
