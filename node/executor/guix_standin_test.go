package executor

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/nixtest"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/derivation"
	"github.com/tbfg/tbfg-node/store/nar"
)

// standInGuix is NOT Guix. The executor's tests of builds and of what it
// reads about outputs run it against this stand-in for the guix command: a
// shell script that answers the three commands the executor runs with Nix
// 2.8 on a /gnu/store chroot store ($STANDIN_STORE), the way guix-daemon
// would: `guix build DRV` substitutes a missing .drv closure from the
// substitute URLs given first and realises it; `guix gc --references` and
// `guix gc --derivers` query the store's database. It fails like guix build,
// with a last "guix build: error: build of … failed" line, and logs every
// command line to $STANDIN_ARGS. It checks the executor's use of the guix
// command line and its reading of the outputs, not guix-daemon itself (its
// messages are Nix's, not guix's): TestGuixExecutorFailures checks the
// failures against the real guix-daemon, and TestGuixExecutorReal a build
// where a full Guix is installed.
const standInGuix = `#!/bin/sh
printf '%s\n' "$*" >> "$STANDIN_ARGS"
case "$1 $2" in
"gc --references") exec nix-store --store "$STANDIN_STORE" --query --references "$3" ;;
"gc --derivers")
	d=$(nix-store --store "$STANDIN_STORE" --query --deriver "$3") || exit 1
	[ "$d" = unknown-deriver ] || echo "$d"
	exit 0 ;;
esac
[ "$1" = build ] || { echo "guix stand-in: unknown command: $*" >&2; exit 2; }
shift
drv= subs= timeout= silent=
for a in "$@"; do
	case "$a" in
	--no-grafts|--no-offload) ;;
	--substitute-urls=*) subs=${a#--substitute-urls=} ;;
	--timeout=*) timeout=${a#--timeout=} ;;
	--max-silent-time=*) silent=${a#--max-silent-time=} ;;
	/gnu/store/*.drv) drv=$a ;;
	*) echo "guix stand-in: unknown argument $a" >&2; exit 2 ;;
	esac
done
set -- --store "$STANDIN_STORE" --option substituters "$subs"
[ -z "$timeout" ] || set -- "$@" --timeout "$timeout"
[ -z "$silent" ] || set -- "$@" --max-silent-time "$silent"
nix-store "$@" --realise "$drv" || { echo "guix build: error: build of \` + "`" + `$drv' failed" >&2; exit 1; }
`

// standIn is a Guix executor over the stand-in, with the store it builds
// in and the file logging its command lines.
type standIn struct {
	*Guix
	daemon *nixtest.Nix
	args   string
}

// newStandIn returns a Guix executor running the stand-in on a fresh, empty
// store, with the substitute URLs urls.
func newStandIn(t *testing.T, urls ...string) *standIn {
	t.Helper()
	daemon := nixtest.New(t, store.GuixDir)
	dir := t.TempDir()
	script := filepath.Join(dir, "guix")
	if err := os.WriteFile(script, []byte(standInGuix), 0o755); err != nil {
		t.Fatal(err)
	}
	args := filepath.Join(dir, "args")
	env := append(daemon.Cmd("nix").Env, "STANDIN_STORE="+daemon.Store, "STANDIN_ARGS="+args)
	g, err := NewGuix(GuixConfig{Command: script, RealDir: daemon.RealStoreDir, SubstituteURLs: urls, Env: env})
	if err != nil {
		t.Fatal(err)
	}
	return &standIn{Guix: g, daemon: daemon, args: args}
}

// meshCache makes a file:// binary cache holding the .drv closures of drvs
// from e's Nix, standing for the node's own substitute server.
func meshCache(t *testing.T, e *env, drvs ...store.Path) string {
	t.Helper()
	url := "file://" + t.TempDir() + "?store=" + string(store.GuixDir)
	args := []string{"copy", "--derivation", "--to", url}
	for _, d := range drvs {
		args = append(args, string(d))
	}
	e.nix.Run(t, "nix", args...)
	return url
}

// chainDrvs instantiates chain.nix and returns its derivations, inputs first.
func chainDrvs(t *testing.T, e *env) []store.Path {
	t.Helper()
	var drvs []store.Path
	for _, p := range e.topoOrder(t, e.instantiate(t, "chain.nix", "")) {
		if strings.HasSuffix(string(p), ".drv") {
			drvs = append(drvs, p)
		}
	}
	return drvs
}

// checkOutputs compares what the executor reported for drv with what Nix
// recorded when it built the same derivation.
func checkOutputs(t *testing.T, drv store.Path, res *Result, want map[store.Path]nixPathInfo) int {
	t.Helper()
	for id, got := range res.Outputs {
		w, ok := want[got.Path]
		sum, _ := parseNixSum(w)
		if !ok || got.Nar != sum || !slices.Equal(got.References, w.References) || got.Deriver != drv {
			t.Errorf("%s output %s: got %+v, want %+v", drv, id, got, w)
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

// TestGuixExecutorStandIn builds the chain one derivation at a time, as the
// agent does, in an empty store whose .drv files come only from the mesh
// cache given first in --substitute-urls, and checks what the executor
// reports against Nix's own build of the same derivations.
func TestGuixExecutorStandIn(t *testing.T) {
	e := newStoreEnv(t)
	drvs := chainDrvs(t, e)
	g := newStandIn(t, meshCache(t, e, drvs[len(drvs)-1]))
	want := e.nixBuild(t, drvs...)
	seen := 0
	for _, drv := range drvs {
		var log bytes.Buffer
		res, err := g.Build(context.Background(), Request{DrvPath: drv, Drv: e.load(t, drv), Log: &log, Timeout: time.Minute})
		if err != nil {
			t.Fatalf("%v\n%s", err, log.String())
		}
		seen += checkOutputs(t, drv, res, want)
		checkOutputNARs(t, g.Guix, res)
	}
	if seen != len(want) {
		t.Errorf("executor reported %d outputs, Nix built %d", seen, len(want))
	}
	args, err := os.ReadFile(g.args)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(args), "build --no-grafts --no-offload --substitute-urls=file://") {
		t.Errorf("guix was run as:\n%s", args)
	}
}

// TestGuixExecutorStandInInputs has the daemon take the inputs built
// elsewhere from the mesh cache instead of building them.
func TestGuixExecutorStandInInputs(t *testing.T) {
	e := newStoreEnv(t)
	drvs := chainDrvs(t, e)
	top := drvs[len(drvs)-1]
	want := e.nixBuild(t, drvs...)
	cache := meshCache(t, e, top)
	copyArgs := []string{"copy", "--to", cache}
	for p, info := range want {
		if info.Deriver != top {
			copyArgs = append(copyArgs, string(p))
		}
	}
	e.nix.Run(t, "nix", copyArgs...)
	g := newStandIn(t, cache)
	var log bytes.Buffer
	res, err := g.Build(context.Background(), Request{DrvPath: top, Drv: e.load(t, top), Log: &log})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	checkOutputs(t, top, res, want)
	for _, d := range drvs[:len(drvs)-1] {
		if strings.Contains(log.String(), string(d)+"'...") {
			t.Errorf("input %s was built, not substituted:\n%s", d, log.String())
		}
	}
}

// TestGuixExecutorReal builds a fresh derivation with the real guix and
// guix-daemon and checks the NarHash against `guix hash`. It runs only where
// guix is on PATH with its daemon running and able to build computed-file,
// which needs Guix's bootstrap binaries. CI has no such Guix, so there it
// skips, and the stand-in tests above are what CI runs.
func TestGuixExecutorReal(t *testing.T) {
	if _, err := exec.LookPath("guix"); err != nil {
		t.Skip("skipping: needs a Guix that builds packages (guix on PATH, guix-daemon running, " +
			"bootstrap binaries); CI has none, so this skips even under CI=true")
	}
	nonce := strconv.FormatInt(time.Now().UnixNano(), 10)
	expr := `(computed-file "tbfg-executor-test" #~(begin (mkdir #$output)` +
		` (call-with-output-file (string-append #$output "/nonce") (lambda (port) (display "` + nonce + `" port)))))`
	drv := store.Path(nixtest.Output(t, exec.Command("guix", "build", "--no-grafts", "-d", "-e", expr)))
	d, err := derivation.DirLoader{Root: string(store.GuixDir), Dir: store.GuixDir}.Load(drv)
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGuix(GuixConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	res, err := g.Build(context.Background(), Request{DrvPath: drv, Drv: d, Log: &log, Timeout: 30 * time.Minute})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	out := res.Outputs["out"]
	if out == nil || out.Deriver != drv {
		t.Fatalf("outputs %+v, want out derived from %s", res.Outputs, drv)
	}
	if got, err := os.ReadFile(filepath.Join(string(out.Path), "nonce")); err != nil || string(got) != nonce {
		t.Errorf("output holds %q, %v; want %q", got, err, nonce)
	}
	hash := nixtest.Output(t, exec.Command("guix", "hash", "-S", "nar", string(out.Path)))
	if "sha256:"+hash != out.NarHash() {
		t.Errorf("NarHash %s, guix hash says sha256:%s", out.NarHash(), hash)
	}
}
