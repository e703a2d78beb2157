package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/node/executor"
	"github.com/tbfg/tbfg-node/node/meshsource"
	"github.com/tbfg/tbfg-node/scheduler"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/local"
	"github.com/tbfg/tbfg-node/substitutes/narinfo"
	"github.com/tbfg/tbfg-node/substitutes/nixkey"
	"github.com/tbfg/tbfg-node/substitutes/pki"
)

// TestOrphansRequeuedOnStart starts an agent on a state that shows one build
// running on its node (left over from an earlier run) and one allocated: the
// first is reported failed (infrastructure) and re-queued without being run,
// the second is run.
func TestOrphansRequeuedOnStart(t *testing.T) {
	c := newCluster(t)
	n := c.join(t, "A", 2)
	orphan, _ := c.fakeDrv(t, n, "orphan")
	fresh, _ := c.fakeDrv(t, n, "fresh")
	c.allocate(t, orphan, "A")
	c.allocate(t, fresh, "A")
	c.Apply(t, &scheduler.Started{Time: t0, Build: orphan, Node: "A"})
	var ran sync.Map
	start(t, c.config(t, n, executor.Func(func(_ context.Context, req executor.Request) (*executor.Result, error) {
		ran.Store(req.DrvPath, true)
		return builtOutputs(n.store, req)
	}), 2))
	c.WaitFor(t, "both builds handled", func(s *scheduler.State) bool {
		o, _ := s.Build(orphan)
		f, _ := s.Build(fresh)
		return o.State == scheduler.BuildQueued && f.State == scheduler.BuildSucceeded
	})
	o := c.Build(t, orphan)
	if o.Reason != scheduler.ReasonInfrastructure || o.NotBefore.IsZero() {
		t.Errorf("orphan re-queued with reason %s, not before %v", o.Reason, o.NotBefore)
	}
	if _, ok := ran.Load(store.Path(o.Drv)); ok {
		t.Error("the orphaned build was run")
	}
}

// TestFailureReasons maps executor errors to the failure reasons committed.
func TestFailureReasons(t *testing.T) {
	cases := []struct {
		err    error
		state  scheduler.BuildState
		reason scheduler.Reason
	}{
		{fmt.Errorf("build x: %w: exit status 1", executor.ErrBuilderFailed), scheduler.BuildFailed, scheduler.ReasonBuildError},
		{fmt.Errorf("build x: %w", executor.ErrTimedOut), scheduler.BuildFailed, scheduler.ReasonTimeout},
		{fmt.Errorf("build x: %w", executor.ErrSilent), scheduler.BuildFailed, scheduler.ReasonTimeout},
		{fmt.Errorf("build x: %w", executor.ErrOutputHash), scheduler.BuildFailed, scheduler.ReasonBuildError},
		{fmt.Errorf("build x: %w", executor.ErrMissingInputs), scheduler.BuildQueued, scheduler.ReasonMissingInput},
		{fmt.Errorf("build x: %w", executor.ErrSandbox), scheduler.BuildQueued, scheduler.ReasonInfrastructure},
		{errors.New("disk full"), scheduler.BuildQueued, scheduler.ReasonInfrastructure},
	}
	for _, tc := range cases {
		t.Run(tc.err.Error(), func(t *testing.T) {
			c := newCluster(t)
			n := c.join(t, "A", 1)
			id, _ := c.fakeDrv(t, n, "x")
			start(t, c.config(t, n, executor.Func(func(context.Context, executor.Request) (*executor.Result, error) {
				return nil, tc.err
			}), 1))
			c.allocate(t, id, "A")
			c.WaitFor(t, "failure", func(s *scheduler.State) bool {
				b, _ := s.Build(id)
				return b.Reason != scheduler.ReasonNone
			})
			if b := c.Build(t, id); b.State != tc.state || b.Reason != tc.reason {
				t.Errorf("build %s (%s), want %s (%s)", b.State, b.Reason, tc.state, tc.reason)
			}
		})
	}
}

// TestMissingInput checks that an input no member holds fails the build with
// missing-input before the executor runs.
func TestMissingInput(t *testing.T) {
	c := newCluster(t)
	n := c.join(t, "A", 1)
	id, _ := c.fakeDrv(t, n, "x")
	cfg := c.config(t, n, executor.Func(func(context.Context, executor.Request) (*executor.Result, error) {
		t.Error("executor ran without its inputs")
		return nil, errors.New("no")
	}), 1)
	cfg.Fetcher = fetchFunc(func(context.Context, ...store.Path) error { return meshsource.ErrNotHeld })
	start(t, cfg)
	c.allocate(t, id, "A")
	c.WaitFor(t, "failure", func(s *scheduler.State) bool {
		b, _ := s.Build(id)
		return b.Reason == scheduler.ReasonMissingInput && b.State == scheduler.BuildQueued
	})
}

// TestIncompleteResultFails checks that an executor result lacking an output
// of the derivation fails the build (infrastructure) instead of committing a
// Succeeded the state would reject.
func TestIncompleteResultFails(t *testing.T) {
	c := newCluster(t)
	n := c.join(t, "A", 1)
	id, _ := c.fakeDrv(t, n, "x")
	start(t, c.config(t, n, executor.Func(func(context.Context, executor.Request) (*executor.Result, error) {
		return &executor.Result{Outputs: map[string]*local.Info{}, Built: true}, nil
	}), 1))
	c.allocate(t, id, "A")
	c.WaitFor(t, "failure", func(s *scheduler.State) bool {
		b, _ := s.Build(id)
		return b.Reason != scheduler.ReasonNone
	})
	if b := c.Build(t, id); b.State != scheduler.BuildQueued || b.Reason != scheduler.ReasonInfrastructure ||
		!strings.Contains(b.Message, `lacks output "out"`) {
		t.Errorf("build %s (%s: %s), want queued after an infrastructure failure", b.State, b.Reason, b.Message)
	}
}

type fetchFunc func(context.Context, ...store.Path) error

func (f fetchFunc) Fetch(ctx context.Context, paths ...store.Path) error { return f(ctx, paths...) }

// TestSuccessPublishes checks what a success commits: a signed narinfo per
// output that verifies with the node's Guix and Nix keys, and the build's log.
func TestSuccessPublishes(t *testing.T) {
	c := newCluster(t)
	n := c.join(t, "A", 1)
	id, out := c.fakeDrv(t, n, "x")
	start(t, c.config(t, n, executor.Func(func(_ context.Context, req executor.Request) (*executor.Result, error) {
		io.WriteString(req.Log, "building x\n")
		return builtOutputs(n.store, req)
	}), 1))
	c.allocate(t, id, "A")
	c.WaitFor(t, "success", func(s *scheduler.State) bool {
		b, _ := s.Build(id)
		return b.State == scheduler.BuildSucceeded
	})
	ni, err := n.src.Narinfo(context.Background(), out.HashPart())
	if err != nil {
		t.Fatal(err)
	}
	if st := narinfo.VerifyGuix(ni, &pki.ACL{Keys: []pki.PublicKey{n.signer.Guix.Public}}); st != pki.Valid {
		t.Errorf("Guix signature: %s", st)
	}
	if !narinfo.VerifyNix(ni, []nixkey.PublicKey{n.signer.Nix.Public()}) {
		t.Error("Nix signature does not verify")
	}
	if ni.System != "x86_64-linux" || ni.Deriver != store.Path(c.Build(t, id).Drv).Base() {
		t.Errorf("narinfo System %q Deriver %q", ni.System, ni.Deriver)
	}
	rc, err := n.src.Log(context.Background(), out.Base())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if text, err := io.ReadAll(rc); err != nil || string(text) != "building x\n" {
		t.Errorf("log %q, %v", text, err)
	}
}

// TestBuildTouchesInputs checks that a build counts as a use of its inputs
// (here its .drv), so that the store collector, which removes the least
// recently used items first, keeps what builds read.
func TestBuildTouchesInputs(t *testing.T) {
	c := newCluster(t)
	n := c.join(t, "A", 1)
	id, _ := c.fakeDrv(t, n, "x")
	drv := store.Path(c.Build(t, id).Drv)
	before := lastUsed(t, n.store, drv)
	start(t, c.config(t, n, executor.Func(func(_ context.Context, req executor.Request) (*executor.Result, error) {
		return builtOutputs(n.store, req)
	}), 1))
	c.allocate(t, id, "A")
	c.WaitFor(t, "success", func(s *scheduler.State) bool {
		b, _ := s.Build(id)
		return b.State == scheduler.BuildSucceeded
	})
	if after := lastUsed(t, n.store, drv); !after.After(before) {
		t.Errorf("last use of the build's .drv %v, not after %v: the build did not count as a use", after, before)
	}
}

// lastUsed is p's last use as the store's Usage reports it.
func lastUsed(t *testing.T, s *local.Store, p store.Path) time.Time {
	t.Helper()
	usage, err := s.Usage()
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range usage {
		if u.Path == p {
			return u.LastUsed
		}
	}
	t.Fatalf("%s not in the store", p)
	return time.Time{}
}

// TestMaxBuildsAndTakeAway runs three allocations with room for two: never
// more than two run at once; a build canceled while running is stopped and
// nothing is committed for it; the others finish.
func TestMaxBuildsAndTakeAway(t *testing.T) {
	c := newCluster(t)
	n := c.join(t, "A", 3)
	var ids []scheduler.BuildID
	for _, name := range []string{"x", "y", "z"} {
		id, _ := c.fakeDrv(t, n, name)
		ids = append(ids, id)
	}
	var runningNow, most atomic.Int32
	started := make(chan store.Path, 3)
	release := make(chan struct{})
	stopped := make(chan store.Path, 3)
	start(t, c.config(t, n, executor.Func(func(ctx context.Context, req executor.Request) (*executor.Result, error) {
		cur := runningNow.Add(1)
		defer runningNow.Add(-1)
		for old := most.Load(); cur > old && !most.CompareAndSwap(old, cur); old = most.Load() {
		}
		started <- req.DrvPath
		select {
		case <-release:
			return builtOutputs(n.store, req)
		case <-ctx.Done():
			stopped <- req.DrvPath
			return nil, ctx.Err()
		}
	}), 2))
	for _, id := range ids {
		c.allocate(t, id, "A")
	}
	first := recv(t, started)
	recv(t, started)
	victim := c.buildByDrv(t, first)
	c.Apply(t, &scheduler.Cancel{Time: c.clock.Now(), Builds: []scheduler.BuildID{victim}})
	if got := recv(t, stopped); got != first {
		t.Errorf("stopped %s, want %s", got, first)
	}
	recv(t, started) // the freed slot takes the third build
	close(release)
	c.WaitFor(t, "the other builds", func(s *scheduler.State) bool {
		done := 0
		for _, id := range ids {
			if b, _ := s.Build(id); b.State == scheduler.BuildSucceeded {
				done++
			}
		}
		return done == 2
	})
	if b := c.Build(t, victim); b.State != scheduler.BuildCanceled || b.Reason != scheduler.ReasonNone {
		t.Errorf("canceled build is %s (%s)", b.State, b.Reason)
	}
	if m := most.Load(); m > 2 {
		t.Errorf("%d builds ran at once, max 2", m)
	}
}

// TestStopReportsRunning stops an agent during a build: the build is stopped
// and reported failed (infrastructure), so it re-queues.
func TestStopReportsRunning(t *testing.T) {
	c := newCluster(t)
	n := c.join(t, "A", 1)
	id, _ := c.fakeDrv(t, n, "x")
	started := make(chan store.Path, 1)
	stop := start(t, c.config(t, n, executor.Func(func(ctx context.Context, req executor.Request) (*executor.Result, error) {
		started <- req.DrvPath
		<-ctx.Done()
		return nil, ctx.Err()
	}), 1))
	c.allocate(t, id, "A")
	recv(t, started)
	stop()
	if b := c.Build(t, id); b.State != scheduler.BuildQueued || b.Reason != scheduler.ReasonInfrastructure {
		t.Errorf("build is %s (%s) after the agent stopped", b.State, b.Reason)
	}
}

// TestLoadLimit checks that a build beyond the first waits while the load is
// at its limit and starts on a tick once it drops.
func TestLoadLimit(t *testing.T) {
	c := newCluster(t)
	n := c.join(t, "A", 2)
	x, _ := c.fakeDrv(t, n, "x")
	y, _ := c.fakeDrv(t, n, "y")
	var load atomic.Int64
	load.Store(10)
	tick := make(chan time.Time)
	started := make(chan store.Path, 2)
	release := make(chan struct{})
	cfg := c.config(t, n, executor.Func(func(ctx context.Context, req executor.Request) (*executor.Result, error) {
		started <- req.DrvPath
		<-release
		return builtOutputs(n.store, req)
	}), 2)
	cfg.Load, cfg.LoadLimit, cfg.Tick = func() float64 { return float64(load.Load()) }, 4, tick
	start(t, cfg)
	c.allocate(t, x, "A")
	c.allocate(t, y, "A")
	recv(t, started)
	tick <- time.Time{} // the agent has re-checked the load once it takes the next tick
	tick <- time.Time{}
	select {
	case p := <-started:
		t.Fatalf("%s started above the load limit", p)
	default:
	}
	load.Store(1)
	tick <- time.Time{}
	recv(t, started)
	close(release)
	c.WaitFor(t, "both builds", func(s *scheduler.State) bool {
		bx, _ := s.Build(x)
		by, _ := s.Build(y)
		return bx.State == scheduler.BuildSucceeded && by.State == scheduler.BuildSucceeded
	})
}

func recv[T any](t testing.TB, c <-chan T) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(waitTimeout):
		t.Fatal("timed out")
	}
	panic("unreachable")
}

func (c *cluster) buildByDrv(t testing.TB, drv store.Path) scheduler.BuildID {
	t.Helper()
	var b scheduler.BuildInfo
	c.FSM.Read(func(s *scheduler.State) { b, _ = s.BuildByDrv(string(drv)) })
	return b.ID
}

// flakyApplier fails the first command of type fail, as a commit lost in a
// leader change that the mesh gave up retrying.
type flakyApplier struct {
	scheduler.Applier
	fail   scheduler.CommandType
	failed atomic.Bool
}

func (a *flakyApplier) Apply(ctx context.Context, cmd []byte) ([]byte, error) {
	if c, err := scheduler.Decode(cmd); err == nil && c.Type() == a.fail && a.failed.CompareAndSwap(false, true) {
		return nil, errors.New("no leader")
	}
	return a.Applier.Apply(ctx, cmd)
}

// TestCommitRetried checks that a command that could not be committed is
// tried again on a later tick, and that the build runs once all the same: a
// lost Started before building, a lost Succeeded or Failed (also an orphan's)
// without building again.
func TestCommitRetried(t *testing.T) {
	cases := []struct {
		name   string
		fail   scheduler.CommandType
		orphan bool
		err    error
		want   scheduler.BuildState
		runs   int32
	}{
		{"started", scheduler.TypeStarted, false, nil, scheduler.BuildSucceeded, 1},
		{"succeeded", scheduler.TypeSucceeded, false, nil, scheduler.BuildSucceeded, 1},
		{"failed", scheduler.TypeFailed, false, fmt.Errorf("%w: exit status 1", executor.ErrBuilderFailed),
			scheduler.BuildFailed, 1},
		{"orphan", scheduler.TypeFailed, true, nil, scheduler.BuildQueued, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t)
			n := c.join(t, "A", 1)
			id, _ := c.fakeDrv(t, n, "x")
			c.allocate(t, id, "A")
			if tc.orphan {
				c.Apply(t, &scheduler.Started{Time: t0, Build: id, Node: "A"})
			}
			var runs atomic.Int32
			tick := make(chan time.Time)
			app := &flakyApplier{Applier: c.Applier, fail: tc.fail}
			cfg := c.config(t, n, executor.Func(func(_ context.Context, req executor.Request) (*executor.Result, error) {
				runs.Add(1)
				if tc.err != nil {
					return nil, tc.err
				}
				return builtOutputs(n.store, req)
			}), 1)
			cfg.Applier, cfg.Tick = app, tick
			start(t, cfg)
			deadline := time.Now().Add(waitTimeout)
			for c.Build(t, id).State != tc.want {
				if time.Now().After(deadline) {
					t.Fatalf("timed out waiting for the build to be %s", tc.want)
				}
				select {
				case tick <- time.Time{}: // taken once the agent is back in its loop
				case <-time.After(100 * time.Millisecond): // or the build is running: look again
				}
			}
			if !app.failed.Load() {
				t.Errorf("%s never failed", tc.name)
			}
			if r := runs.Load(); r != tc.runs {
				t.Errorf("executor ran %d times, want %d", r, tc.runs)
			}
		})
	}
}
