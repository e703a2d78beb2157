package executor

import (
	"bytes"
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/store"
)

// TestBuildChainLikeNix builds a chain of three derivations instantiated by
// real Nix with the builtin executor, and checks every output's path,
// NarHash, NarSize, references and deriver against what Nix records when it
// builds the same derivations itself.
func TestBuildChainLikeNix(t *testing.T) {
	e := newEnv(t)
	before := hostStoreState(t)
	top := e.instantiate(t, "chain.nix", "")
	var drvs []store.Path
	for _, p := range e.topoOrder(t, top) {
		if strings.HasSuffix(string(p), ".drv") {
			drvs = append(drvs, p)
		}
	}
	if len(drvs) != 3 {
		t.Fatalf("closure has derivations %v", drvs)
	}
	built := map[store.Path]bool{}
	for _, drv := range drvs {
		var log bytes.Buffer
		res, err := e.exec.Build(context.Background(), Request{DrvPath: drv, Drv: e.load(t, drv), Log: &log, Timeout: time.Minute})
		if err != nil {
			t.Fatalf("%v\nlog:\n%s", err, log.String())
		}
		for id, info := range res.Outputs {
			if info.Path != e.load(t, drv).Outputs[id].Path {
				t.Errorf("%s output %s registered as %s", drv, id, info.Path)
			}
			built[info.Path] = true
		}
	}
	want := e.nixBuild(t, drvs...)
	if len(want) != len(built) {
		t.Errorf("Nix built %d outputs, the builtin executor %d", len(want), len(built))
	}
	for p, w := range want {
		got, err := e.store.Query(p)
		if err != nil {
			t.Errorf("Nix built %s, the local store lacks it: %v", p, err)
			continue
		}
		sum, err := parseNixSum(w)
		if err != nil {
			t.Fatal(err)
		}
		if got.Nar != sum || !slices.Equal(got.References, w.References) || got.Deriver != w.Deriver {
			t.Errorf("%s:\n got %s %d refs %v deriver %s\nwant %s %d refs %v deriver %s", p,
				got.NarHash(), got.Nar.Size, got.References, got.Deriver,
				sum.NarHash(), sum.Size, w.References, w.Deriver)
		}
	}
	checkHostUntouched(t, e, before)
}

// TestBuildAgain checks that building a derivation whose outputs are valid
// returns them without running the builder.
func TestBuildAgain(t *testing.T) {
	e := newEnv(t)
	drv := e.instantiate(t, "cases.nix", "env")
	req := Request{DrvPath: drv, Drv: e.load(t, drv)}
	first, err := e.exec.Build(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.exec.Build(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Built || again.Built || again.Outputs["out"].Nar != first.Outputs["out"].Nar {
		t.Errorf("first %+v, again %+v", first, again)
	}
}

// TestBuildConcurrentSame builds one derivation twice at once: one build
// runs the builder, the other waits for the outputs' lock and returns them.
func TestBuildConcurrentSame(t *testing.T) {
	e := newEnv(t)
	drv := e.instantiate(t, "cases.nix", "env")
	req := Request{DrvPath: drv, Drv: e.load(t, drv)}
	results := make(chan *Result, 2)
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			res, err := e.exec.Build(context.Background(), req)
			results <- res
			errs <- err
		}()
	}
	built := 0
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		if (<-results).Built {
			built++
		}
	}
	if built != 1 {
		t.Errorf("the builder ran %d times, want 1", built)
	}
}

// TestBuildEnvironment checks what the builder sees: the variables Nix and
// Guix set, the build directory, a passAsFile variable, the store at its
// logical path.
func TestBuildEnvironment(t *testing.T) {
	e := newEnv(t)
	drv := e.instantiate(t, "cases.nix", "env")
	d := e.load(t, drv)
	res, err := e.exec.Build(context.Background(), Request{DrvPath: drv, Drv: d})
	if err != nil {
		t.Fatal(err)
	}
	real, _ := e.store.RealPath(res.Outputs["out"].Path)
	data, err := os.ReadFile(real)
	if err != nil {
		t.Fatal(err)
	}
	top := "/tmp/guix-build-env.drv-0"
	for _, line := range []string{
		"HOME=/homeless-shelter", "PATH=/path-not-set", "NIX_STORE=/gnu/store",
		"NIX_BUILD_TOP=" + top, "TMPDIR=" + top, "TEMPDIR=" + top, "TMP=" + top, "TEMP=" + top,
		"out=" + string(d.Outputs["out"].Path), "name=env", "system=x86_64-linux",
		"cwd=" + top, "contents passed as a file",
	} {
		if !slices.Contains(strings.Split(string(data), "\n"), line) {
			t.Errorf("builder did not see %q; it saw:\n%s", line, data)
		}
	}
	if strings.Contains(string(data), "big=") {
		t.Error("passAsFile variable also passed in the environment")
	}
}

// TestBuildSandbox checks that the builder cannot write to the host's files
// and sees a fresh /tmp holding only its build directory.
func TestBuildSandbox(t *testing.T) {
	e := newEnv(t)
	const probe = "/etc/.tbfg-sandbox-probe"
	t.Cleanup(func() { os.Remove(probe) })
	drv := e.instantiate(t, "cases.nix", "host-readonly")
	var log bytes.Buffer
	res, err := e.exec.Build(context.Background(), Request{DrvPath: drv, Drv: e.load(t, drv), Log: &log})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if _, err := os.Lstat(probe); err == nil {
		t.Errorf("the builder created %s on the host", probe)
	}
	real, _ := e.store.RealPath(res.Outputs["out"].Path)
	if data, err := os.ReadFile(real); err != nil || string(data) != "guix-build-host-readonly.drv-0\n" {
		t.Errorf("/tmp in the sandbox holds %q, %v", data, err)
	}
}

// TestBuildNixLayout builds in a /nix/store store on a host that may have
// its own /nix/store: the builder sees the local store there, the host's
// stays as it was, and the build directory is /build as in Nix's sandbox.
func TestBuildNixLayout(t *testing.T) {
	e := newEnvAt(t, store.NixDir)
	before, _ := os.ReadDir("/nix/store")
	drv := e.instantiate(t, "cases.nix", "env")
	res, err := e.exec.Build(context.Background(), Request{DrvPath: drv, Drv: e.load(t, drv)})
	if err != nil {
		t.Fatal(err)
	}
	real, _ := e.store.RealPath(res.Outputs["out"].Path)
	data, err := os.ReadFile(real)
	if err != nil || !strings.Contains(string(data), "\nNIX_BUILD_TOP=/build\n") {
		t.Errorf("builder saw:\n%s", data)
	}
	after, _ := os.ReadDir("/nix/store")
	if len(after) != len(before) {
		t.Errorf("host /nix/store had %d entries, now %d", len(before), len(after))
	}
}

// TestBuildFailures checks that a failing builder, a timeout, a silent
// builder and a missing output each give a clear error and leave no output
// behind, and that nothing appears in the host's /gnu/store.
func TestBuildFailures(t *testing.T) {
	e := newEnv(t)
	before := hostStoreState(t)
	tests := []struct {
		attr      string
		timeout   time.Duration
		maxSilent time.Duration
		want      error
		log       string
	}{
		{"fails", time.Minute, 0, ErrBuilderFailed, "failing on purpose"},
		{"runs-forever", 2 * time.Second, 0, ErrTimedOut, "tick"},
		{"silent", time.Minute, time.Second, ErrSilent, "going quiet"},
		{"no-output", time.Minute, 0, ErrMissingOutput, "nothing written"},
		{"fixed-wrong", time.Minute, 0, ErrOutputHash, ""},
		{"cycle", time.Minute, 0, ErrOutputCycle, ""},
	}
	var outputs []store.Path
	for _, tt := range tests {
		t.Run(tt.attr, func(t *testing.T) {
			drv := e.instantiate(t, "cases.nix", tt.attr)
			d := e.load(t, drv)
			var log bytes.Buffer
			_, err := e.exec.Build(context.Background(), Request{
				DrvPath: drv, Drv: d, Log: &log, Timeout: tt.timeout, MaxSilent: tt.maxSilent,
			})
			if !errors.Is(err, tt.want) || !IsBuildFailure(err) {
				t.Fatalf("Build = %v, want %v", err, tt.want)
			}
			t.Log(err)
			if !strings.Contains(log.String(), tt.log) {
				t.Errorf("log %q lacks %q", log.String(), tt.log)
			}
			for _, o := range d.Outputs {
				outputs = append(outputs, o.Path)
				real, _ := e.store.RealPath(o.Path)
				if _, err := os.Lstat(real); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("output %s left behind: %v", o.Path, err)
				}
				if ok, _ := e.store.IsValid(o.Path); ok {
					t.Errorf("output %s is valid", o.Path)
				}
			}
		})
	}
	checkHostUntouched(t, e, before, outputs...)
}

// TestBuildFixedLikeNix builds flat and recursive fixed-output derivations
// and compares the outputs with Nix's.
func TestBuildFixedLikeNix(t *testing.T) {
	e := newEnv(t)
	var drvs []store.Path
	for _, attr := range []string{"fixed", "fixed-recursive"} {
		drv := e.instantiate(t, "cases.nix", attr)
		res, err := e.exec.Build(context.Background(), Request{DrvPath: drv, Drv: e.load(t, drv)})
		if err != nil {
			t.Fatal(err)
		}
		if res.Outputs["out"].CA == "" {
			t.Errorf("%s: no content address recorded", drv)
		}
		drvs = append(drvs, drv)
	}
	for p, w := range e.nixBuild(t, drvs...) {
		got, err := e.store.Query(p)
		if err != nil {
			t.Fatal(err)
		}
		if sum, _ := parseNixSum(w); got.Nar != sum || len(got.References) != 0 {
			t.Errorf("%s: got %s refs %v, Nix has %s", p, got.NarHash(), got.References, w.NarHash)
		}
	}
}

// TestBuildTamperedDerivation checks that a derivation whose builder was
// changed after its output paths were computed is refused.
func TestBuildTamperedDerivation(t *testing.T) {
	e := newEnv(t)
	drv := e.instantiate(t, "cases.nix", "env")
	d := e.load(t, drv)
	d.Args = []string{"-c", "echo something else > $out"}
	_, err := e.exec.Build(context.Background(), Request{DrvPath: drv, Drv: d})
	if !errors.Is(err, ErrInvalidDerivation) {
		t.Fatalf("Build = %v, want ErrInvalidDerivation", err)
	}
	t.Log(err)
	if ok, _ := e.store.IsValid(d.Outputs["out"].Path); ok {
		t.Error("output registered")
	}
}

// TestBuildMissingInputs checks that a derivation whose inputs were not
// built is refused before anything runs.
func TestBuildMissingInputs(t *testing.T) {
	e := newEnv(t)
	top := e.instantiate(t, "chain.nix", "")
	_, err := e.exec.Build(context.Background(), Request{DrvPath: top, Drv: e.load(t, top)})
	if !errors.Is(err, ErrMissingInputs) || IsBuildFailure(err) {
		t.Fatalf("Build = %v, want ErrMissingInputs", err)
	}
	t.Log(err)
}

// TestBuildCancel checks that cancelling the context stops the build.
func TestBuildCancel(t *testing.T) {
	e := newEnv(t)
	drv := e.instantiate(t, "cases.nix", "silent")
	ctx, cancel := context.WithCancel(context.Background())
	log := &notifyWriter{ch: make(chan struct{}, 1)}
	errc := make(chan error, 1)
	go func() {
		_, err := e.exec.Build(ctx, Request{DrvPath: drv, Drv: e.load(t, drv), Log: log})
		errc <- err
	}()
	<-log.ch // the builder is running
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Build = %v, want context.Canceled", err)
	}
}

// notifyWriter signals on its first write.
type notifyWriter struct{ ch chan struct{} }

func (w *notifyWriter) Write(p []byte) (int, error) {
	select {
	case w.ch <- struct{}{}:
	default:
	}
	return len(p), nil
}
