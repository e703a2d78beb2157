package agent

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/nixtest"
	"github.com/tbfg/tbfg-node/node/executor"
	"github.com/tbfg/tbfg-node/node/meshsource"
	"github.com/tbfg/tbfg-node/scheduler"
	"github.com/tbfg/tbfg-node/store"
)

// crashingApplier drops final commits once crashed is set, as when a node
// dies before it can report a build.
type crashingApplier struct {
	scheduler.Applier
	crashed atomic.Bool
}

func (a *crashingApplier) Apply(ctx context.Context, cmd []byte) ([]byte, error) {
	if c, err := scheduler.Decode(cmd); err == nil && a.crashed.Load() {
		switch c.(type) {
		case *scheduler.Failed, *scheduler.Succeeded:
			return nil, errors.New("node is down")
		}
	}
	return a.Applier.Apply(ctx, cmd)
}

// TestRestartRequeuesOrphan stops node A in the middle of a real build
// without letting it report (a crash), restarts its agent on the same store
// and state: the orphaned build is reported failed (infrastructure),
// re-queued, and built by node B.
func TestRestartRequeuesOrphan(t *testing.T) {
	requireRoot(t)
	n := nixtest.New(t, store.GuixDir)
	gateDir, err := os.MkdirTemp("", "agent-gate-") // shown to the builds by newBuiltin
	if err == nil {
		err = os.Chmod(gateDir, 0o755) // builders run as other users
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(gateDir) })
	gate := filepath.Join(gateDir, "open")
	expr, _ := filepath.Abs(filepath.Join("testdata", "slow.nix"))
	drv := store.Path(n.Run(t, "nix-instantiate", expr, "--argstr", "gate", gate))
	c := newCluster(t)
	nodeA, nodeB := c.join(t, "A", 1), c.join(t, "B", 1)
	id := c.submitGraph(t, nodeA, n, map[string]store.Path{"slow": drv})["slow"]
	var target atomic.Value
	target.Store("A")
	c.runAllocatorFunc(t, func(scheduler.BuildID) string { return target.Load().(string) })

	crash := &crashingApplier{Applier: c.Applier}
	cfgA := c.config(t, nodeA, newBuiltin(t, nodeA, gateDir), 1)
	cfgA.Applier = crash
	started := &logTap{want: []byte("started"), seen: make(chan struct{})}
	cfgA.Executor = tapLog(cfgA.Executor, started)
	stopA := start(t, cfgA)
	recv(t, started.seen)
	crash.crashed.Store(true)
	stopA()
	if b := c.Build(t, id); b.State != scheduler.BuildRunning || b.Node != "A" {
		t.Fatalf("after the crash the build is %s on %q", b.State, b.Node)
	}

	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	target.Store("B")
	start(t, c.config(t, nodeA, newBuiltin(t, nodeA, gateDir), 1))
	c.WaitFor(t, "the orphan re-queued", func(s *scheduler.State) bool {
		b, _ := s.Build(id)
		return b.State == scheduler.BuildQueued
	})
	if b := c.Build(t, id); b.Reason != scheduler.ReasonInfrastructure {
		t.Errorf("orphan re-queued with reason %s", b.Reason)
	}
	start(t, c.config(t, nodeB, newBuiltin(t, nodeB, gateDir), 1))
	c.clock.Add(time.Minute) // past the back-off; the next command wakes the allocator
	c.Apply(t, &scheduler.HolderAdded{Time: c.clock.Now(), Node: "A"})
	c.WaitFor(t, "B to build it", func(s *scheduler.State) bool {
		b, _ := s.Build(id)
		return b.State == scheduler.BuildSucceeded
	})
	var it scheduler.ItemInfo
	c.FSM.Read(func(s *scheduler.State) { b, _ := s.Build(id); it, _ = s.Item(b.Outputs[0].Path) })
	if len(it.Holders) != 1 || it.Holders[0] != "B" {
		t.Errorf("output held by %v, want B", it.Holders)
	}
}

// logTap closes seen once the build log contains want.
type logTap struct {
	want []byte
	seen chan struct{}
	mu   sync.Mutex
	buf  bytes.Buffer
	once sync.Once
}

func (l *logTap) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	if bytes.Contains(l.buf.Bytes(), l.want) {
		l.once.Do(func() { close(l.seen) })
	}
	return len(p), nil
}

// tapLog copies every build's log to tap as well.
func tapLog(ex executor.Executor, tap io.Writer) executor.Executor {
	return executor.Func(func(ctx context.Context, req executor.Request) (*executor.Result, error) {
		req.Log = io.MultiWriter(req.Log, tap)
		return ex.Build(ctx, req)
	})
}

// TestTamperedInputRefused gives node B a peer that tampers with every NAR:
// B's build fails with missing-input (and is re-queued) and nothing enters
// B's store.
func TestTamperedInputRefused(t *testing.T) {
	requireRoot(t)
	n := nixtest.New(t, store.GuixDir)
	c := newCluster(t)
	nodeA, nodeB := c.join(t, "A", 1), c.join(t, "B", 1)
	drvs := instantiateGraph(t, n)
	ids := c.submitGraph(t, nodeA, n, map[string]store.Path{"a": drvs["a"], "b": drvs["b"]})
	c.runAllocator(t, map[scheduler.BuildID]string{ids["a"]: "A", ids["b"]: "B"})
	src, err := meshsource.New(meshsource.Config{Self: "B", FSM: c.FSM, Store: nodeB.store,
		Remote: meshsource.RemoteFunc(func(ctx context.Context, peer string, p store.Path) (io.ReadCloser, error) {
			rc, err := c.remote.OpenNAR(ctx, peer, p)
			if err != nil {
				return nil, err
			}
			defer rc.Close()
			b, err := io.ReadAll(rc)
			if err != nil {
				return nil, err
			}
			b[len(b)/2] ^= 1
			return io.NopCloser(bytes.NewReader(b)), nil
		})})
	if err != nil {
		t.Fatal(err)
	}
	cfgB := c.config(t, nodeB, newBuiltin(t, nodeB), 1)
	cfgB.Fetcher = src
	start(t, cfgB)
	start(t, c.config(t, nodeA, newBuiltin(t, nodeA), 1))
	c.WaitFor(t, "b to fail", func(s *scheduler.State) bool {
		b, _ := s.Build(ids["b"])
		return b.Reason != scheduler.ReasonNone
	})
	if b := c.Build(t, ids["b"]); b.State != scheduler.BuildQueued || b.Reason != scheduler.ReasonMissingInput {
		t.Errorf("b is %s (%s)", b.State, b.Reason)
	}
	if valid, _ := nodeB.store.Valid(); len(valid) != 0 {
		t.Errorf("B's store took tampered items: %v", valid)
	}
	if entries, _ := os.ReadDir(nodeB.store.RealDir()); len(entries) != 0 {
		t.Errorf("B's store directory has %d entries", len(entries))
	}
}
