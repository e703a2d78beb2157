package agent

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/queuetest"
	"github.com/tbfg/tbfg-node/internal/testlog"
	"github.com/tbfg/tbfg-node/node/buildlog"
	"github.com/tbfg/tbfg-node/node/executor"
	"github.com/tbfg/tbfg-node/node/meshsource"
	"github.com/tbfg/tbfg-node/scheduler"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/derivation"
	"github.com/tbfg/tbfg-node/store/local"
	"github.com/tbfg/tbfg-node/substitutes/nixkey"
	"github.com/tbfg/tbfg-node/substitutes/pki"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// waitTimeout bounds every wait in these tests.
const waitTimeout = queuetest.WaitTimeout

// cluster is a replicated state shared by the members' stores, whose
// commands the clock stamps.
type cluster struct {
	*queuetest.Queue
	remote *meshsource.StoreRemote
	clock  *queuetest.Clock
}

func newCluster(t testing.TB) *cluster {
	clock := queuetest.NewClock(t0)
	return &cluster{Queue: queuetest.New(t, clock.Now), remote: meshsource.NewStoreRemote(), clock: clock}
}

// node is one member: its store, keys, Source and agent configuration.
type node struct {
	id     string
	store  *local.Store
	signer *meshsource.Signer
	src    *meshsource.Source
	logs   *buildlog.Dir
}

// join makes a member with a fresh store and keys and registers it.
func (c *cluster) join(t testing.TB, id string, maxBuilds int) *node {
	t.Helper()
	dir := t.TempDir()
	st, err := local.Open(filepath.Join(dir, "store"), store.GuixDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	gk, err := pki.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	nk, err := nixkey.Generate(id+"-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Join(t, id, string(gk.Public.Marshal()), maxBuilds)
	logs, err := buildlog.Open(filepath.Join(dir, "logs"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := meshsource.New(meshsource.Config{Self: id, FSM: c.FSM, Store: st, Remote: c.remote,
		Logs: logs, Logger: testLogger(t, id)})
	if err != nil {
		t.Fatal(err)
	}
	c.remote.Add(id, st)
	return &node{id: id, store: st, signer: &meshsource.Signer{Host: id, Guix: gk, Nix: nk}, src: src, logs: logs}
}

// config is an agent configuration for n with executor ex.
func (c *cluster) config(t testing.TB, n *node, ex executor.Executor, maxBuilds int) Config {
	return Config{Node: n.id, FSM: c.FSM, Applier: c.Applier, Executor: ex, Store: n.store, Fetcher: n.src,
		Signer: n.signer, MaxBuilds: maxBuilds, Timeout: time.Minute, Logs: n.logs,
		Now: c.clock.Now, Logger: testLogger(t, n.id+" agent")}
}

// start runs an agent until the test ends; stop cancels it and waits.
func start(t testing.TB, cfg Config) (stop func()) {
	t.Helper()
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(waitTimeout):
				t.Error("agent did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// fakeDrv writes into n's store a derivation whose single output is a text
// item made beforehand (so an executor.Func can "build" it by returning its
// record), submits it and returns its build id and output.
func (c *cluster) fakeDrv(t testing.TB, n *node, name string) (scheduler.BuildID, store.Path) {
	t.Helper()
	d := chainDrv(t, n, name, nil)
	items, err := n.signer.Items(n.store, store.Path(d.Path))
	if err != nil {
		t.Fatal(err)
	}
	resp := c.Apply(t, &scheduler.Submit{Time: c.clock.Now(), Submitter: "test", Node: n.id, Items: items,
		Derivations: []scheduler.Derivation{d}})
	ids, err := scheduler.DecodeSubmitResponse(resp)
	if err != nil {
		t.Fatal(err)
	}
	return ids[0], store.Path(d.Outputs[0].Path)
}

// chainDrv writes into n's store a derivation like fakeDrv's whose input is
// the output of the derivation prev (none if nil), and returns its
// scheduler record.
func chainDrv(t testing.TB, n *node, name string, prev *scheduler.Derivation) scheduler.Derivation {
	t.Helper()
	ctx := context.Background()
	out, err := n.store.AddText(ctx, "out-"+name, []byte("output of "+name+"\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	d := &derivation.Derivation{Outputs: map[string]derivation.Output{"out": {Path: out}},
		System: "x86_64-linux", Builder: "/bin/sh", Env: map[string]string{"out": string(out)}}
	drv, err := n.store.AddText(ctx, name+".drv", d.Bytes(), nil)
	if err != nil {
		t.Fatal(err)
	}
	sd := scheduler.Derivation{Path: string(drv), System: "x86_64-linux",
		Outputs: []scheduler.Output{{Name: "out", Path: string(out)}}}
	if prev != nil {
		sd.Inputs = []scheduler.Input{{Drv: prev.Path, Outputs: []string{"out"}}}
	}
	return sd
}

func (c *cluster) allocate(t testing.TB, id scheduler.BuildID, node string) {
	t.Helper()
	c.Apply(t, &scheduler.Allocate{Time: c.clock.Now(), Allocations: []scheduler.Allocation{{Build: id, Node: node}}})
}

// builtOutputs is an executor.Func that returns the records of outputs
// already in st, as if it had built them.
func builtOutputs(st *local.Store, req executor.Request) (*executor.Result, error) {
	res := &executor.Result{Outputs: map[string]*local.Info{}, Built: true}
	for id, o := range req.Drv.Outputs {
		info, err := st.Query(o.Path)
		if err != nil {
			return nil, err
		}
		res.Outputs[id] = info
	}
	return res, nil
}

// testLogger routes a component's logs to t.Log.
func testLogger(t testing.TB, prefix string) *slog.Logger { return testlog.New(t, prefix) }
