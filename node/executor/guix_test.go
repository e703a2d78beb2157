package executor

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/derivation"
	"github.com/tbfg/tbfg-node/store/nar"
)

var updateGuixGolden = flag.Bool("update-guix-golden", false, "rewrite testdata/guix/*.golden")

// testGuix is a Guix executor for tests of its command lines; the command
// only has to exist.
func testGuix(t *testing.T, cfg GuixConfig) *Guix {
	t.Helper()
	if cfg.Command == "" {
		cfg.Command = "/bin/true"
	}
	g, err := NewGuix(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestGuixBuildArgs checks the `guix build` command lines against the
// options of guix/scripts/build.scm.
func TestGuixBuildArgs(t *testing.T) {
	const drv = "/gnu/store/56qik9nxk07zgasgnfpl0xj0mi3h82k1-three.drv"
	base := []string{"build", "--no-grafts", "--no-offload"}
	tests := []struct {
		name string
		cfg  GuixConfig
		req  Request
		want []string
	}{
		{"bare", GuixConfig{}, Request{DrvPath: drv}, append(base, drv)},
		{"mesh first", GuixConfig{SubstituteURLs: []string{"http://127.0.0.1:8761", "https://ci.guix.gnu.org"}},
			Request{DrvPath: drv},
			append(base, "--substitute-urls=http://127.0.0.1:8761 https://ci.guix.gnu.org", drv)},
		{"limits round up to seconds", GuixConfig{}, Request{DrvPath: drv, Timeout: 90 * time.Second, MaxSilent: 1500 * time.Millisecond},
			append(base, "--timeout=90", "--max-silent-time=2", drv)},
		{"options before the derivation", GuixConfig{Options: []string{"--fallback", "--cores=4"}},
			Request{DrvPath: drv, Timeout: time.Minute},
			append(base, "--timeout=60", "--fallback", "--cores=4", drv)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := testGuix(t, tt.cfg).buildArgs(tt.req)
			if !slices.Equal(got, tt.want) {
				t.Errorf("args:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestNewGuixRefuses checks that bad configurations are refused with a
// message naming what is wrong.
func TestNewGuixRefuses(t *testing.T) {
	tests := []struct {
		name string
		cfg  GuixConfig
		want string
	}{
		{"no guix", GuixConfig{Command: filepath.Join(t.TempDir(), "guix")}, "install Guix"},
		{"white space", GuixConfig{Command: "/bin/true", SubstituteURLs: []string{"http://a:1 http://b:2"}}, "contains white space"},
		{"scheme", GuixConfig{Command: "/bin/true", SubstituteURLs: []string{"ftp://a"}}, "want an http, https or file URL"},
		{"no host", GuixConfig{Command: "/bin/true", SubstituteURLs: []string{"http:///x"}}, "no host"},
		{"bad dir", GuixConfig{Command: "/bin/true", Dir: "gnu/store"}, "absolute path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewGuix(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewGuix = %v, want an error saying %q", err, tt.want)
			}
		})
	}
}

// TestParseStorePaths checks the reading of what guix build and guix gc
// print.
func TestParseStorePaths(t *testing.T) {
	const a, b = "/gnu/store/53k3qngma3xwjbprzdl8mnmp0pnn6smf-three", "/gnu/store/b8lh1h15b2m80vn1dyajy797whiakk3l-two-doc"
	tests := []struct {
		name, in string
		want     []store.Path
		err      string
	}{
		{"empty", "", nil, ""},
		{"two", a + "\n" + b + "\n", []store.Path{a, b}, ""},
		{"blank lines", "\n" + a + "\n\n", []store.Path{a}, ""},
		{"other store", "/nix/store/53k3qngma3xwjbprzdl8mnmp0pnn6smf-three\n", nil, "line 1"},
		{"below an item", a + "/bin/sh\n", nil, "line 1"},
		{"text", a + "\nguix gc: warning: hello\n", nil, "line 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStorePaths(store.GuixDir, []byte(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, store.ErrBadPath) {
					t.Fatalf("parseStorePaths = %v, %v; want an error at %s", got, err, tt.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("parseStorePaths = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// TestGuixFailure classifies the error output of failed `guix build` runs
// (testdata/guix/*.stderr, see its README) and compares the errors with
// the golden files.
func TestGuixFailure(t *testing.T) {
	exit1 := exec.Command("/bin/sh", "-c", "exit 1").Run()
	tests := []struct {
		file string
		want error
	}{
		{"builder-failed", ErrBuilderFailed},
		{"builder-spoofs-timeout", ErrBuilderFailed},
		{"builder-spoofs-unterminated", ErrBuilderFailed},
		{"builder-spoofs-missing-input", ErrBuilderFailed},
		{"timed-out", ErrTimedOut},
		{"timed-out-after-spoof", ErrTimedOut},
		{"real-timed-out", ErrTimedOut},
		{"real-silent", ErrSilent},
		{"real-hash-mismatch", ErrOutputHash},
		{"real-missing-output", ErrMissingOutput},
		{"real-missing-derivation", ErrMissingInputs},
		{"real-missing-derivation-c-locale", ErrMissingInputs},
		{"silent", ErrSilent},
		{"hash-mismatch", ErrOutputHash},
		{"missing-output", ErrMissingOutput},
		{"missing-derivation", ErrMissingInputs},
		{"substitute-failed", ErrMissingInputs},
		{"daemon-unreachable", nil},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			stderr, err := os.ReadFile(filepath.Join("testdata", "guix", tt.file+".stderr"))
			if err != nil {
				t.Fatal(err)
			}
			got := guixFailure(exit1, string(stderr))
			if tt.want != nil && !errors.Is(got, tt.want) {
				t.Errorf("guixFailure = %v, want %v", got, tt.want)
			}
			if tt.want == nil && IsBuildFailure(got) || errors.Is(got, ErrMissingInputs) != (tt.want == ErrMissingInputs) {
				t.Errorf("guixFailure = %v: wrong kind of failure", got)
			}
			checkGolden(t, filepath.Join("testdata", "guix", tt.file+".golden"), got.Error()+"\n")
		})
	}
}

// checkGolden compares got with the golden file, or rewrites it with
// -update-guix-golden.
func checkGolden(t *testing.T, file, got string) {
	t.Helper()
	if *updateGuixGolden {
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run with -update-guix-golden to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s:\n got %q\nwant %q", file, got, want)
	}
}

// TestGuixFailureNotRun checks that a guix that could not be started is a
// failure of the node.
func TestGuixFailureNotRun(t *testing.T) {
	err := guixFailure(exec.ErrNotFound, "")
	if err == nil || IsBuildFailure(err) {
		t.Fatalf("guixFailure = %v, want a failure of the node", err)
	}
}

// TestCheckPrinted checks what `guix build` printed against the outputs.
func TestCheckPrinted(t *testing.T) {
	const out = "/gnu/store/53k3qngma3xwjbprzdl8mnmp0pnn6smf-three"
	d := &derivation.Derivation{Outputs: map[string]derivation.Output{"out": {Path: out}}}
	if err := checkPrinted(d, []store.Path{out}); err != nil {
		t.Errorf("its own output: %v", err)
	}
	if err := checkPrinted(d, nil); err != nil {
		t.Errorf("nothing printed: %v", err)
	}
	if err := checkPrinted(d, []store.Path{"/gnu/store/b8lh1h15b2m80vn1dyajy797whiakk3l-two-doc"}); err == nil {
		t.Error("another path was accepted")
	}
}

// TestPickDeriver checks the choice among the daemon's valid derivers.
func TestPickDeriver(t *testing.T) {
	const drv, other = "/gnu/store/56qik9nxk07zgasgnfpl0xj0mi3h82k1-three.drv", "/gnu/store/pgs4j3b34ird2c2c5m71c4aw3x29nyla-two.drv"
	tests := []struct {
		derivers []store.Path
		want     store.Path
	}{
		{nil, ""},
		{[]store.Path{other, drv}, drv},
		{[]store.Path{other}, other},
	}
	for _, tt := range tests {
		if got := pickDeriver(drv, tt.derivers); got != tt.want {
			t.Errorf("pickDeriver(%v) = %s, want %s", tt.derivers, got, tt.want)
		}
	}
}

// FuzzGuixFailure feeds arbitrary error output to the classifier, and
// arbitrary builder output into real error output of guix build where a
// builder's output goes, before the daemon's verdict (with or without a
// final newline): the failure must stay of the kind the verdict reports.
func FuzzGuixFailure(f *testing.F) {
	cases := []struct {
		file, before string // before: the first line the daemon prints after the builder's output
		want         error
	}{
		{"builder-failed", "builder for `", ErrBuilderFailed},
		{"real-timed-out", "building of `", ErrTimedOut},
		{"real-silent", "building of `", ErrSilent},
		{"real-hash-mismatch", "sha256 hash mismatch for ", ErrOutputHash},
		{"real-missing-output", "builder for `", ErrMissingOutput},
	}
	stderrs := make([][]string, len(cases))
	for i, c := range cases {
		b, err := os.ReadFile(filepath.Join("testdata", "guix", c.file+".stderr"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b), "")
		stderrs[i] = strings.SplitAfter(string(b), "\n")
	}
	for _, spoof := range []string{"builder-spoofs-timeout", "builder-spoofs-missing-input", "timed-out", "missing-derivation"} {
		b, err := os.ReadFile(filepath.Join("testdata", "guix", spoof+".stderr"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add("", string(b))
		f.Add("", strings.TrimRight(string(b), "\n"))
	}
	f.Add("error: \n\r\x00", "guix build: error: \n")
	exit1 := exec.Command("/bin/sh", "-c", "exit 1").Run()
	f.Fuzz(func(t *testing.T, stderr, builder string) {
		if err := guixFailure(exit1, stderr); err == nil {
			t.Fatal("a failed guix build gave no error")
		}
		for i, c := range cases {
			lines := stderrs[i]
			at := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, c.before) })
			spoofed := strings.Join(lines[:at], "") + builder + strings.Join(lines[at:], "")
			if err := guixFailure(exit1, spoofed); !errors.Is(err, c.want) {
				t.Fatalf("%s with builder output %q: %v, want %v", c.file, builder, err, c.want)
			}
		}
	})
}

// FuzzParseStorePaths feeds arbitrary output to the reader of guix's store
// path lists: every path it returns must be a valid store path.
func FuzzParseStorePaths(f *testing.F) {
	f.Add("/gnu/store/53k3qngma3xwjbprzdl8mnmp0pnn6smf-three\n")
	f.Add("\n\n/gnu/store/x\n")
	f.Fuzz(func(t *testing.T, out string) {
		paths, err := parseStorePaths(store.GuixDir, []byte(out))
		if err != nil {
			return
		}
		for _, p := range paths {
			if _, err := store.GuixDir.ParsePath(string(p)); err != nil {
				t.Fatalf("returned invalid path %q: %v", p, err)
			}
		}
	})
}

// TestGuixOutputNAR streams an item from the store's real directory, and
// refuses paths of other stores and missing items.
func TestGuixOutputNAR(t *testing.T) {
	const item = "/gnu/store/53k3qngma3xwjbprzdl8mnmp0pnn6smf-three"
	real := t.TempDir()
	if err := os.MkdirAll(filepath.Join(real, store.Path(item).Base(), "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(real, store.Path(item).Base(), "bin", "x"), bytes.Repeat([]byte("x"), 1<<20), 0o555); err != nil {
		t.Fatal(err)
	}
	g := testGuix(t, GuixConfig{RealDir: real})
	want, err := nar.HashPath(filepath.Join(real, store.Path(item).Base()))
	if err != nil {
		t.Fatal(err)
	}
	r, err := g.OutputNAR(context.Background(), item)
	if err != nil {
		t.Fatal(err)
	}
	got, err := nar.Verify(r)
	if err != nil || got != want || r.Close() != nil {
		t.Errorf("OutputNAR gives %v, %v; want %v", got, err, want)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r, err = g.OutputNAR(ctx, item)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := io.ReadAll(r); !errors.Is(err, context.Canceled) {
		t.Errorf("read after cancel: %v, want %v", err, context.Canceled)
	}
	r.Close()
	for _, p := range []store.Path{"/nix/store/53k3qngma3xwjbprzdl8mnmp0pnn6smf-three", "/gnu/store/b8lh1h15b2m80vn1dyajy797whiakk3l-two-doc", "/gnu/store/..", "/gnu/store/53k3qngma3xwjbprzdl8mnmp0pnn6smf-three/bin"} {
		if r, err := g.OutputNAR(context.Background(), p); err == nil {
			r.Close()
			t.Errorf("OutputNAR(%s) succeeded", p)
		}
	}
}
