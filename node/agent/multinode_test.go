package agent

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/citest"
	"github.com/tbfg/tbfg-node/internal/nixtest"
	"github.com/tbfg/tbfg-node/node/buildlog"
	"github.com/tbfg/tbfg-node/node/executor"
	"github.com/tbfg/tbfg-node/node/meshsource"
	"github.com/tbfg/tbfg-node/scheduler"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/local"
	"github.com/tbfg/tbfg-node/substitutes/narinfo"
	"github.com/tbfg/tbfg-node/substitutes/nixkey"
	"github.com/tbfg/tbfg-node/substitutes/pki"
)

// requireRoot skips tests that run the builtin executor (mount namespaces)
// when not root, failing instead under CI.
func requireRoot(t testing.TB) {
	t.Helper()
	citest.Root(t, "the builtin executor's mount namespaces")
}

// TestTwoNodesBuildGraph has two nodes with their own stores and the real
// builtin executor build a graph instantiated by real Nix, with a dependency
// across nodes: the .drv files and inputs cross stores through the Fetcher.
// Every build but the failing one succeeds (its dependent becomes
// failed-dependency), outputs have the NarHash Nix computes for the same
// derivations, and the narinfos verify with the member keys.
func TestTwoNodesBuildGraph(t *testing.T) {
	requireRoot(t)
	n := nixtest.New(t, store.GuixDir)
	c := newCluster(t)
	nodeA, nodeB := c.join(t, "A", 2), c.join(t, "B", 2)
	drvs := instantiateGraph(t, n)
	ids := c.submitGraph(t, nodeA, n, drvs)
	where := map[string]string{"a": "A", "b": "B", "c": "A", "bad": "B", "after-bad": "A"}
	allocs := map[scheduler.BuildID]string{}
	for name, node := range where {
		allocs[ids[name]] = node
	}
	c.runAllocator(t, allocs)
	var mu sync.Mutex
	finished := map[string]int{} // "node system result" → builds
	for _, nd := range []*node{nodeA, nodeB} {
		cfg := c.config(t, nd, newBuiltin(t, nd), 2)
		cfg.Finished = func(system, result string, d time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			if d >= 0 {
				finished[nd.id+" "+system+" "+result]++
			}
		}
		start(t, cfg)
	}
	c.waitGraph(t, ids)
	mu.Lock()
	sys := c.Build(t, ids["a"]).System
	want := map[string]int{"A " + sys + " succeeded": 2, "B " + sys + " succeeded": 1, "B " + sys + " failed": 1}
	if !maps.Equal(finished, want) {
		t.Errorf("Finished heard %v, want %v", finished, want)
	}
	mu.Unlock()
	if b := c.Build(t, ids["bad"]); b.Reason != scheduler.ReasonBuildError {
		t.Errorf("bad failed with %s", b.Reason)
	}
	nixInfos := nixBuild(t, n, drvs["c"])
	stores := map[string]*local.Store{"A": nodeA.store, "B": nodeB.store}
	acl, nixKeys := c.memberKeys(t), []nixkey.PublicKey{nodeA.signer.Nix.Public(), nodeB.signer.Nix.Public()}
	for _, name := range []string{"a", "b", "c"} {
		b := c.Build(t, ids[name])
		for _, o := range b.Outputs {
			c.checkOutput(t, o.Path, nixInfos, stores, acl, nixKeys)
		}
	}
	// b ran on B with a's output, which only A built: it crossed stores.
	if ok, _ := nodeB.store.IsValid(store.Path(c.Build(t, ids["a"]).Outputs[0].Path)); !ok {
		t.Error("B built b without a's output in its store")
	}
	logText := readLog(t, nodeA.logs, drvs["a"])
	if logText != "building a\n" {
		t.Errorf("log of a: %q", logText)
	}
	if readLog(t, nodeB.logs, drvs["bad"]) != "failing on purpose\n" {
		t.Error("log of bad lacks its output")
	}
}

// waitGraph waits until every build of the graph of testdata/graph.nix is
// done, and checks that each ended as it must: "bad" fails on purpose and its
// dependent "after-bad" with it.
func (c *cluster) waitGraph(t *testing.T, ids map[string]scheduler.BuildID) {
	t.Helper()
	c.WaitFor(t, "the graph", func(s *scheduler.State) bool {
		for _, id := range ids {
			if b, _ := s.Build(id); !b.State.Done() {
				return false
			}
		}
		return true
	})
	want := map[string]scheduler.BuildState{"a": scheduler.BuildSucceeded, "b": scheduler.BuildSucceeded,
		"c": scheduler.BuildSucceeded, "bad": scheduler.BuildFailed, "after-bad": scheduler.BuildFailedDependency}
	for name, st := range want {
		if b := c.Build(t, ids[name]); b.State != st {
			t.Errorf("%s is %s (%s: %s), want %s", name, b.State, b.Reason, b.Message, st)
		}
	}
}

// newBuiltin is the builtin executor over nd's store, with busybox as /bin/sh
// in the sandbox.
func newBuiltin(t *testing.T, nd *node, shown ...string) executor.Executor {
	paths := map[string]string{"/bin/sh": "/bin/busybox"}
	for _, p := range shown { // host paths shown to builders at the same path
		paths[p] = p
	}
	ex, err := executor.NewBuiltin(executor.BuiltinConfig{Store: nd.store, BuildDir: t.TempDir(),
		SandboxPaths: paths, Logger: testLogger(t, nd.id+" exec")})
	if err != nil {
		t.Fatal(err)
	}
	return ex
}

// instantiateGraph instantiates testdata/graph.nix with real Nix and returns
// each attribute's .drv.
func instantiateGraph(t *testing.T, n *nixtest.Nix) map[string]store.Path {
	expr, err := filepath.Abs(filepath.Join("testdata", "graph.nix"))
	if err != nil {
		t.Fatal(err)
	}
	drvs := map[string]store.Path{}
	for _, name := range []string{"a", "b", "c", "bad", "after-bad"} {
		drvs[name] = store.Path(n.Run(t, "nix-instantiate", expr, "-A", name))
	}
	return drvs
}

// submitGraph imports the .drv closure into nd's store from Nix's store
// directory, as `tbfg-node submit` does with a copy of a store, and submits
// it with the .drv files and sources as items nd holds. It returns the build
// id of each name.
func (c *cluster) submitGraph(t *testing.T, nd *node, n *nixtest.Nix, drvs map[string]store.Path) map[string]scheduler.BuildID {
	ctx := context.Background()
	roots := slices.Collect(func(yield func(store.Path) bool) {
		for _, d := range drvs {
			if !yield(d) {
				return
			}
		}
	})
	slices.Sort(roots)
	if _, err := meshsource.ImportDrvs(ctx, nd.store, n.RealStoreDir, roots...); err != nil {
		t.Fatal(err)
	}
	graph, err := meshsource.Graph(nd.store, roots...)
	if err != nil {
		t.Fatal(err)
	}
	items, err := nd.signer.Items(nd.store, roots...)
	if err != nil {
		t.Fatal(err)
	}
	resp := c.Apply(t, &scheduler.Submit{Time: c.clock.Now(), Submitter: "test", Node: nd.id,
		Derivations: graph, Items: items})
	got, err := scheduler.DecodeSubmitResponse(resp)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]scheduler.BuildID{}
	for name, d := range drvs {
		i := slices.IndexFunc(graph, func(g scheduler.Derivation) bool { return g.Path == string(d) })
		ids[name] = got[i]
	}
	return ids
}

// runAllocator allocates each ready build to its node, as the leader would,
// until the test ends: on every change it tries the queued builds (Apply
// rejects those whose inputs are not available yet).
func (c *cluster) runAllocator(t *testing.T, allocs map[scheduler.BuildID]string) {
	c.runAllocatorFunc(t, func(id scheduler.BuildID) string { return allocs[id] })
}

// runAllocatorFunc is runAllocator with the node of each build chosen by
// nodeOf ("" leaves it queued).
func (c *cluster) runAllocatorFunc(t *testing.T, nodeOf func(scheduler.BuildID) string) {
	ctx, cancel := context.WithCancel(context.Background())
	sub := c.FSM.Changes()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer sub.Close()
		for {
			var queued []scheduler.BuildID
			c.FSM.Read(func(s *scheduler.State) {
				for _, b := range s.Builds(0, 0, func(st scheduler.BuildState) bool { return st == scheduler.BuildQueued }) {
					queued = append(queued, b.ID)
				}
			})
			for _, id := range queued {
				if node := nodeOf(id); node != "" {
					c.Applier.Apply(ctx, scheduler.Encode(&scheduler.Allocate{Time: c.clock.Now(),
						Allocations: []scheduler.Allocation{{Build: id, Node: node}}}))
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-sub.C:
			}
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// nixPathInfo is what `nix path-info --json` says of a path.
type nixPathInfo struct {
	Path       store.Path   `json:"path"`
	NarHash    string       `json:"narHash"`
	NarSize    int64        `json:"narSize"`
	References []store.Path `json:"references"`
	Deriver    store.Path   `json:"deriver"`
}

// nixBuild has Nix build drv and returns what it records of every output in
// the closure.
func nixBuild(t *testing.T, n *nixtest.Nix, drv store.Path) map[store.Path]nixPathInfo {
	outs := strings.Fields(n.Run(t, "nix-store", "--realise", string(drv)))
	var infos []nixPathInfo
	args := append([]string{"path-info", "--json", "-r"}, outs...)
	if err := json.Unmarshal([]byte(n.Run(t, "nix", args...)), &infos); err != nil {
		t.Fatal(err)
	}
	m := map[store.Path]nixPathInfo{}
	for _, i := range infos {
		slices.Sort(i.References)
		m[i.Path] = i
	}
	return m
}

// memberKeys is the ACL of the members' registered keys.
func (c *cluster) memberKeys(t *testing.T) *pki.ACL {
	acl := &pki.ACL{}
	c.FSM.Read(func(s *scheduler.State) {
		for _, m := range s.Members() {
			k, err := pki.ParsePublicKey([]byte(m.Key))
			if err != nil {
				t.Fatal(err)
			}
			acl.Keys = append(acl.Keys, k)
		}
	})
	return acl
}

// checkOutput compares an output's record, its copies in the stores that hold
// it and its narinfo with what Nix built.
func (c *cluster) checkOutput(t *testing.T, path string, nix map[store.Path]nixPathInfo,
	stores map[string]*local.Store, acl *pki.ACL, nixKeys []nixkey.PublicKey) {
	p := store.Path(path)
	w, ok := nix[p]
	if !ok {
		t.Errorf("Nix did not build %s", p)
		return
	}
	sum, err := local.ParseSum(w.NarHash, w.NarSize)
	if err != nil {
		t.Fatal(err)
	}
	var it scheduler.ItemInfo
	c.FSM.Read(func(s *scheduler.State) { it, _ = s.Item(path) })
	if it.NarHash != sum.NarHash() || len(it.Holders) == 0 {
		t.Errorf("%s recorded with %s by %v, Nix has %s", p, it.NarHash, it.Holders, sum.NarHash())
	}
	for _, h := range it.Holders {
		info, err := stores[h].Query(p)
		if err != nil {
			t.Errorf("%s holds %s: %v", h, p, err)
			continue
		}
		if info.Nar != sum || !slices.Equal(info.References, w.References) || info.Deriver != w.Deriver {
			t.Errorf("%s in %s: %s refs %v deriver %s; Nix: %s refs %v deriver %s", p, h,
				info.NarHash(), info.References, info.Deriver, sum.NarHash(), w.References, w.Deriver)
		}
	}
	ni, err := narinfo.Parse([]byte(it.Narinfo), store.GuixDir)
	if err != nil {
		t.Fatal(err)
	}
	if st := narinfo.VerifyGuix(ni, acl); st != pki.Valid {
		t.Errorf("narinfo of %s: Guix signature %s", p, st)
	}
	if !narinfo.VerifyNix(ni, nixKeys) {
		t.Errorf("narinfo of %s: Nix signature does not verify", p)
	}
	if ni.NarHash != sum.NarHash() || ni.Deriver != w.Deriver.Base() {
		t.Errorf("narinfo of %s: %s deriver %s", p, ni.NarHash, ni.Deriver)
	}
}

func readLog(t *testing.T, logs *buildlog.Dir, drv store.Path) string {
	rc, _, err := logs.Open(context.Background(), drv.Base(), 0, false)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
