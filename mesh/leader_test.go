package mesh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// next reads ch until it yields want or the deadline passes.
func next(t *testing.T, ch <-chan bool, want bool, what string) {
	t.Helper()
	deadline := time.After(scale(10 * time.Second))
	for {
		select {
		case v, ok := <-ch:
			if !ok {
				t.Fatalf("%s: channel closed, want %v", what, want)
			}
			if v == want {
				return
			}
		case <-deadline:
			t.Fatalf("%s: no %v", what, want)
		}
	}
}

// closed waits until ch is closed.
func closed(t *testing.T, ch <-chan bool, what string) {
	t.Helper()
	deadline := time.After(scale(10 * time.Second))
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatalf("%s: channel not closed", what)
		}
	}
}

func TestWatchLeadership(t *testing.T) {
	c := newCluster(t, 3, nil)
	waitFor(t, 15*time.Second, "3 voters", func() error { return c.agreed(3, 3) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watch := map[*testNode]<-chan bool{}
	for _, n := range c.nodes {
		watch[n] = n.WatchLeadership(ctx)
		// A watcher that never reads must not hold Raft up.
		n.WatchLeadership(ctx)
	}
	old := c.leader()
	for _, n := range c.nodes {
		if v := <-watch[n]; v != (n == old) || n.IsLeader() != (n == old) {
			t.Fatalf("%s: first value %v, IsLeader %v; leader is %s", filepath.Base(n.dir), v, n.IsLeader(), filepath.Base(old.dir))
		}
	}
	if err := old.raftNode().r.LeadershipTransfer().Error(); err != nil {
		t.Fatalf("transfer leadership: %v", err)
	}
	next(t, watch[old], false, "old leader after transfer")
	var now *testNode
	waitFor(t, 10*time.Second, "new leader", func() error {
		if now = c.leader(); now == nil || now == old {
			return errors.New("none")
		}
		return nil
	})
	next(t, watch[now], true, "new leader")
	if err := now.Close(); err != nil {
		t.Fatal(err)
	}
	next(t, watch[now], false, "closed leader")
	closed(t, watch[now], "closed leader")
	closed(t, now.WatchLeadership(context.Background()), "watch after close")
	cancel()
	closed(t, watch[old], "cancelled watch")
}

// TestJoinStatusNamesWrongSecret starts a node with the wrong secret and
// checks that, while it is still trying, JoinStatus says why and the log
// says it once, at WARN, per member that refused it.
func TestJoinStatusNamesWrongSecret(t *testing.T) {
	c := newCluster(t, 2, nil)
	waitFor(t, 10*time.Second, "2 nodes", func() error { return c.agreed(2, 1) })
	for _, n := range c.nodes {
		if joining, err := n.JoinStatus(); joining || err != nil {
			t.Fatalf("member's JoinStatus = %v, %v; want false, nil", joining, err)
		}
	}
	var logs syncBuffer
	cfg := withFSM(testConfig(t, filepath.Join(t.TempDir(), "intruder")))
	cfg.Secret = []byte("another secret, 32 bytes long!!!")
	cfg.Peers = append(c.nodes[0].Addrs(), c.nodes[1].Addrs()...)
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if joining, err := m.JoinStatus(); joining || err != nil {
		t.Fatalf("JoinStatus before Start = %v, %v; want false, nil", joining, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	startErr := make(chan error, 1)
	go func() { startErr <- m.Start(ctx) }()
	t.Cleanup(func() { cancel(); m.Close() })

	waitFor(t, 15*time.Second, "join status names the secret", func() error {
		joining, err := m.JoinStatus()
		if !joining || !errors.Is(err, ErrSecretRejected) {
			return fmt.Errorf("JoinStatus = %v, %v", joining, err)
		}
		return nil
	})
	waitFor(t, 15*time.Second, "a warning per member", func() error {
		for _, n := range c.nodes {
			want := `msg="mesh secret rejected by peer ` + n.ID() + `: wrong secret?"`
			if k := strings.Count(logs.String(), want); k != 1 {
				return fmt.Errorf("%q logged %d times, want 1:\n%s", want, k, logs.String())
			}
		}
		return nil
	})
	if !strings.Contains(logs.String(), "level=WARN") {
		t.Fatalf("rejection not logged at WARN:\n%s", logs.String())
	}
	cancel()
	select {
	case err := <-startErr:
		if !errors.Is(err, ErrSecretRejected) {
			t.Fatalf("Start: %v; want ErrSecretRejected", err)
		}
	case <-time.After(scale(10 * time.Second)):
		t.Fatal("Start did not return after cancel")
	}
	if joining, _ := m.JoinStatus(); joining {
		t.Fatal("JoinStatus says joining after Start gave up")
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
