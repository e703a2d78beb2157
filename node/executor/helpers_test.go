package executor

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tbfg/tbfg-node/internal/citest"
	"github.com/tbfg/tbfg-node/internal/nixtest"
	"github.com/tbfg/tbfg-node/internal/testdir"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/derivation"
	"github.com/tbfg/tbfg-node/store/local"
	"github.com/tbfg/tbfg-node/store/nar"
)

// requireRoot skips tests that need to create mount namespaces when not run
// as root, failing instead under CI.
func requireRoot(t testing.TB) {
	t.Helper()
	citest.Root(t, "the builtin executor's mount namespaces")
}

// hostStoreState records what the host has at /gnu, which builds must never
// change.
func hostStoreState(t testing.TB) string {
	t.Helper()
	entries, err := os.ReadDir("/gnu/store")
	if err != nil {
		if _, lerr := os.Lstat("/gnu"); lerr != nil {
			return "no /gnu"
		}
		return "no /gnu/store: " + err.Error()
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return strings.Join(names, "\n")
}

// checkHostUntouched fails t if the host's /gnu changed since before in a
// way e's builds could have caused: an entry appeared that e's store also
// has, or one of also. (Other entries may appear: this machine's own
// guix-daemon, used by other tests, writes there.)
func checkHostUntouched(t testing.TB, e *env, before string, also ...store.Path) {
	t.Helper()
	after := hostStoreState(t)
	if strings.HasPrefix(after, "no /gnu") || strings.HasPrefix(before, "no /gnu") {
		if after != before {
			t.Errorf("host /gnu changed: before %q, after %q", before, after)
		}
		return
	}
	old := map[string]bool{}
	for _, name := range strings.Split(before, "\n") {
		old[name] = true
	}
	ours := map[string]bool{}
	for _, p := range also {
		ours[p.Base()] = true
	}
	for _, name := range strings.Split(after, "\n") {
		_, err := os.Lstat(filepath.Join(e.store.RealDir(), name))
		if !old[name] && (err == nil || ours[name]) {
			t.Errorf("%s appeared in the host's /gnu/store", name)
		}
	}
}

// env is one test setup: real Nix with a Guix-layout store, and a local
// store with a builtin executor.
type env struct {
	nix   *nixtest.Nix
	store *local.Store
	exec  *Builtin
}

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvAt(t, store.GuixDir)
}

// newEnvAt is newEnv with the store directory dir.
func newEnvAt(t testing.TB, dir store.Dir) *env {
	t.Helper()
	requireRoot(t)
	e := newStoreEnvAt(t, dir)
	ex, err := NewBuiltin(BuiltinConfig{
		Store:        e.store,
		BuildDir:     t.TempDir(),
		SandboxPaths: map[string]string{"/bin/sh": "/bin/busybox"},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.exec = ex
	return e
}

// newStoreEnv is newEnv without the builtin executor.
func newStoreEnv(t testing.TB) *env {
	t.Helper()
	return newStoreEnvAt(t, store.GuixDir)
}

// newStoreEnvAt is newStoreEnv with the store directory dir.
func newStoreEnvAt(t testing.TB, dir store.Dir) *env {
	t.Helper()
	n := nixtest.New(t, dir)
	st, err := local.Open(filepath.Join(testdir.New(t), "store"), dir) // items are read-only
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &env{nix: n, store: st}
}

// instantiate runs nix-instantiate on testdata/file (attribute attr if not
// empty), copies the .drv closure into the local store, and returns the
// .drv path.
func (e *env) instantiate(t testing.TB, file, attr string) store.Path {
	t.Helper()
	if attr == "" {
		return e.instantiateArgs(t, file)
	}
	return e.instantiateArgs(t, file, "-A", attr)
}

// instantiateArgs is instantiate with more nix-instantiate arguments.
func (e *env) instantiateArgs(t testing.TB, file string, extra ...string) store.Path {
	t.Helper()
	expr, err := filepath.Abs(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{expr}, extra...)
	top := store.Path(e.nix.Run(t, "nix-instantiate", args...))
	for _, p := range e.topoOrder(t, top) {
		e.copyFromNix(t, p)
	}
	return top
}

// topoOrder is the closure of p, references first.
func (e *env) topoOrder(t testing.TB, p store.Path) []store.Path {
	var out []store.Path
	seen := map[store.Path]bool{}
	var visit func(store.Path)
	visit = func(p store.Path) {
		if seen[p] {
			return
		}
		seen[p] = true
		for _, r := range e.references(t, p) {
			visit(r)
		}
		out = append(out, p)
	}
	visit(p)
	return out
}

func (e *env) references(t testing.TB, p store.Path) []store.Path {
	var out []store.Path
	for _, f := range strings.Fields(e.nix.Run(t, "nix-store", "-q", "--references", string(p))) {
		if store.Path(f) != p {
			out = append(out, store.Path(f))
		}
	}
	return out
}

// copyFromNix adds the item p of Nix's store to the local store, checked
// against the NarHash Nix recorded.
func (e *env) copyFromNix(t testing.TB, p store.Path) {
	t.Helper()
	size, err := strconv.ParseInt(e.nix.Run(t, "nix-store", "-q", "--size", string(p)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := local.ParseSum(e.nix.Run(t, "nix-store", "-q", "--hash", string(p)), size)
	if err != nil {
		t.Fatal(err)
	}
	refs := strings.Fields(e.nix.Run(t, "nix-store", "-q", "--references", string(p)))
	info := &local.Info{Path: p, Nar: sum}
	for _, r := range refs {
		info.References = append(info.References, store.Path(r))
	}
	var archive bytes.Buffer
	if err := nar.Dump(&archive, e.nix.RealPath(p)); err != nil {
		t.Fatal(err)
	}
	if err := e.store.AddFromNAR(context.Background(), info, &archive); err != nil {
		t.Fatal(err)
	}
}

// load parses the .drv p from the local store.
func (e *env) load(t testing.TB, p store.Path) *derivation.Derivation {
	t.Helper()
	d, err := derivation.DirLoader{Root: e.store.RealDir(), Dir: e.store.Dir()}.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// nixBuild has Nix build drvs and returns what it records of every output in
// the closure of their outputs.
func (e *env) nixBuild(t testing.TB, drvs ...store.Path) map[store.Path]nixPathInfo {
	t.Helper()
	args := []string{"--realise"}
	for _, d := range drvs {
		args = append(args, string(d))
	}
	outs := strings.Fields(e.nix.Run(t, "nix-store", args...))
	var infos []nixPathInfo
	if err := json.Unmarshal([]byte(e.nix.Run(t, "nix", append([]string{"path-info", "--json", "-r"}, outs...)...)), &infos); err != nil {
		t.Fatal(err)
	}
	m := make(map[store.Path]nixPathInfo)
	for _, i := range infos {
		slices.Sort(i.References)
		m[i.Path] = i
	}
	return m
}

func parseNixSum(i nixPathInfo) (nar.Sum, error) { return local.ParseSum(i.NarHash, i.NarSize) }
