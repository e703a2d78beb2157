package executor

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/citest"
	"github.com/tbfg/tbfg-node/internal/guixtest"
	"github.com/tbfg/tbfg-node/internal/nixtest"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/nar"
	"github.com/tbfg/tbfg-node/substitutes/narcache"
	"github.com/tbfg/tbfg-node/substitutes/narinfo"
	"github.com/tbfg/tbfg-node/substitutes/pki"
	"github.com/tbfg/tbfg-node/substitutes/publish"
)

// The executor's builds run against the real guix-daemon (a private one
// for each test, see guixtest.StartDaemon), and what it reports is compared
// with Nix's own build of the same derivations. Every case of a build,
// substitution and output reading is one the real daemon produces, so no
// stand-in for guix is left: only the error output of Guix versions other
// than the one CI builds is kept as text, in testdata/guix (TestGuixFailure).

// guixBuildEnv is a Guix executor over a private guix-daemon whose only
// substitute server, standing for the node's own, serves items of e's Nix
// store with narinfos signed by a key the daemon trusts.
type guixBuildEnv struct {
	*env
	guix   *Guix
	daemon *guixtest.PrivateDaemon
	key    *pki.SecretKey
	source *publish.MemSource
}

func newGuixBuildEnv(t *testing.T) *guixBuildEnv {
	t.Helper()
	guixtest.Require(t)
	nixtest.Require(t)
	key, err := pki.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	ge := &guixBuildEnv{env: newStoreEnv(t), key: key, source: publish.NewMemSource()}
	ge.daemon = guixtest.StartDaemon(t, guixtest.DaemonOptions{})
	acl := &pki.ACL{Keys: []pki.PublicKey{key.Public}}
	if err := os.WriteFile(ge.daemon.ACLFile(), acl.Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	ge.guix, err = NewGuix(GuixConfig{Command: guixtest.Guix, SubstituteURLs: []string{serve(t, ge.source)},
		Env: append(os.Environ(), ge.daemon.Env()...)})
	if err != nil {
		t.Fatal(err)
	}
	return ge
}

// serve runs a substitute server over src on 127.0.0.1 until the test
// ends, and returns its URL.
func serve(t *testing.T, src publish.Source) string {
	t.Helper()
	cache, err := narcache.Open(t.TempDir(), narcache.Options{MaxBytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := publish.New(publish.Config{StoreDir: store.GuixDir, Source: src, Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("substitute server: %v", err)
		}
		cache.Close()
	})
	return "http://" + ln.Addr().String()
}

// publish serves the items paths of the Nix store, with narinfos made from
// what Nix recorded of them.
func (ge *guixBuildEnv) publish(t *testing.T, paths ...store.Path) {
	t.Helper()
	infos := ge.nixPathInfos(t, paths...)
	for _, p := range paths {
		info := infos[p]
		var refs []string
		for _, r := range info.References {
			refs = append(refs, r.Base())
		}
		ni := &narinfo.Narinfo{StorePath: p, NarHash: info.NarHash, NarSize: uint64(info.NarSize),
			References: refs, System: "x86_64-linux", Layout: narinfo.LayoutGuix,
			Files: []narinfo.File{{URL: "nar/" + p.Base(), Compression: "none", FileSize: uint64(info.NarSize)}}}
		if info.Deriver != "" {
			ni.Deriver = info.Deriver.Base()
		}
		if err := narinfo.SignGuix(ni, "mesh.example", ge.key); err != nil {
			t.Fatal(err)
		}
		var data bytes.Buffer
		if err := nar.Dump(&data, ge.nix.RealPath(p)); err != nil {
			t.Fatal(err)
		}
		ge.source.Add(ni, data.Bytes())
	}
}

// nixPathInfos is what Nix recorded of paths.
func (ge *guixBuildEnv) nixPathInfos(t *testing.T, paths ...store.Path) map[store.Path]nixPathInfo {
	t.Helper()
	out := map[store.Path]nixPathInfo{}
	for _, p := range paths {
		q := func(what string) string { return ge.nix.Run(t, "nix-store", "--query", what, string(p)) }
		size, err := strconv.ParseInt(q("--size"), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		info := nixPathInfo{Path: p, NarHash: q("--hash"), NarSize: size}
		if d := q("--deriver"); d != "unknown-deriver" {
			info.Deriver = store.Path(d)
		}
		for _, r := range strings.Fields(q("--references")) {
			info.References = append(info.References, store.Path(r))
		}
		out[p] = info
	}
	return out
}

// chain instantiates testdata/guix-chain.nix with a fresh nonce and
// returns the closure of its top .drv, references first, and its .drv
// paths, inputs first. The test's cleanup deletes from the machine's store
// what the daemon got of them, but busybox, which other tests share.
func (ge *guixBuildEnv) chain(t *testing.T) (closure, drvs []store.Path) {
	t.Helper()
	bb := filepath.Join(t.TempDir(), "busybox")
	data, err := os.ReadFile(citest.Tool(t, "/bin/busybox", "busybox-static"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(bb, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bb, "bin", "busybox"), data, 0o555); err != nil {
		t.Fatal(err)
	}
	nonce := strconv.FormatInt(time.Now().UnixNano(), 10)
	top := ge.instantiateArgs(t, "guix-chain.nix", "--arg", "busybox", bb, "--argstr", "nonce", nonce)
	closure = ge.topoOrder(t, top)
	for _, p := range closure {
		if strings.HasSuffix(string(p), ".drv") {
			drvs = append(drvs, p)
		}
	}
	t.Cleanup(func() { ge.deleteFromStore(t, closure, drvs) })
	return closure, drvs
}

// deleteFromStore deletes the outputs of drvs and the .drv files of
// closure from the machine's store, those that are valid there.
func (ge *guixBuildEnv) deleteFromStore(t *testing.T, closure, drvs []store.Path) {
	var paths []string
	for _, d := range drvs {
		for _, o := range outputPaths(ge.load(t, d)) {
			paths = append(paths, string(o))
		}
	}
	for _, p := range closure {
		if strings.HasSuffix(string(p), ".drv") {
			paths = append(paths, string(p))
		}
	}
	infos := ge.daemon.PathInfos(paths...)
	args := []string{"gc", "--delete"}
	for _, p := range paths {
		if _, ok := infos[p]; ok {
			args = append(args, p)
		}
	}
	if len(args) > 2 {
		if _, stderr, err := ge.daemon.Run(args...); err != nil {
			t.Errorf("guix gc --delete: %v\n%s", err, stderr)
		}
	}
}

// checkOutputs compares what the executor reported for drv with what Nix
// recorded when it built the same derivation, and with what guix-daemon
// recorded.
func (ge *guixBuildEnv) checkOutputs(t *testing.T, drv store.Path, res *Result, want map[store.Path]nixPathInfo) int {
	t.Helper()
	for id, got := range res.Outputs {
		w, ok := want[got.Path]
		sum, _ := parseNixSum(w)
		if !ok || got.Nar != sum || !slices.Equal(got.References, w.References) || got.Deriver != drv {
			t.Errorf("%s output %s: got %+v, Nix built %+v", drv, id, got, w)
		}
		rec := ge.daemon.PathInfos(string(got.Path))[string(got.Path)]
		if rec.NarHash != got.NarHash() || rec.Deriver != string(drv) {
			t.Errorf("%s output %s: reported %s, guix-daemon recorded %+v", drv, id, got.NarHash(), rec)
		}
	}
	return len(res.Outputs)
}

// checkOutputNARs checks that OutputNAR streams NARs with the sums Build
// reported.
func checkOutputNARs(t *testing.T, g *Guix, res *Result) {
	t.Helper()
	for id, info := range res.Outputs {
		r, err := g.OutputNAR(context.Background(), info.Path)
		if err != nil {
			t.Fatal(err)
		}
		sum, err := nar.Verify(r)
		if cerr := r.Close(); err == nil {
			err = cerr
		}
		if err != nil || sum != info.Nar {
			t.Errorf("output %s: OutputNAR gives %v, %v; want %v", id, sum, err, info.Nar)
		}
	}
}

// TestGuixExecutorBuilds has guix-daemon build the chain one derivation at
// a time, as the agent does: each .drv is absent from its store and comes,
// with the rest of the .drv closure, from the substitute server given
// first; each input comes from the daemon's own earlier build. It checks
// what the executor reports against Nix's own build of the same
// derivations and against the daemon's records, and the NARs it streams.
func TestGuixExecutorBuilds(t *testing.T) {
	ge := newGuixBuildEnv(t)
	closure, drvs := ge.chain(t)
	ge.publish(t, closure...)
	want := ge.nixBuild(t, drvs...)
	seen := 0
	for _, drv := range drvs {
		if len(ge.daemon.PathInfos(string(drv))) != 0 {
			t.Fatalf("%s is in the daemon's store before the build", drv)
		}
		var log bytes.Buffer
		res, err := ge.guix.Build(context.Background(), Request{DrvPath: drv, Drv: ge.load(t, drv), Log: &log, Timeout: time.Minute})
		if err != nil {
			t.Fatalf("%v\n%s", err, log.String())
		}
		if name := strings.TrimSuffix(drv.Name(), ".drv"); !strings.Contains(log.String(), name+": built") {
			t.Errorf("log of %s lacks what the builder printed:\n%s", drv, log.String())
		}
		seen += ge.checkOutputs(t, drv, res, want)
		checkOutputNARs(t, ge.guix, res)
	}
	if seen != len(want) {
		t.Errorf("executor reported %d outputs, Nix built %d", seen, len(want))
	}
}

// TestGuixExecutorSubstitutesInputs has the daemon build the top of the
// chain with the outputs of its inputs, built by Nix, on the substitute
// server: it must substitute them, not build them, and the executor
// report the top's outputs as Nix built them.
func TestGuixExecutorSubstitutesInputs(t *testing.T) {
	ge := newGuixBuildEnv(t)
	closure, drvs := ge.chain(t)
	top := drvs[len(drvs)-1]
	want := ge.nixBuild(t, drvs...)
	ge.publish(t, closure...)
	var inputs []store.Path
	for p, info := range want {
		if info.Deriver != top {
			inputs = append(inputs, p)
		}
	}
	ge.publish(t, inputs...)
	var log bytes.Buffer
	res, err := ge.guix.Build(context.Background(), Request{DrvPath: top, Drv: ge.load(t, top), Log: &log, Timeout: time.Minute})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	ge.checkOutputs(t, top, res, want)
	for _, d := range drvs[:len(drvs)-1] {
		if strings.Contains(log.String(), strings.TrimSuffix(d.Name(), ".drv")+": built") {
			t.Errorf("input %s was built, not substituted:\n%s", d, log.String())
		}
	}
	if got := ge.daemon.PathInfos(strs(inputs)...); len(got) != len(inputs) {
		t.Errorf("%d of the %d inputs valid in the daemon's store", len(got), len(inputs))
	}
}

func strs(paths []store.Path) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = string(p)
	}
	return out
}
