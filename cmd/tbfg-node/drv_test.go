package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tbfg/tbfg-node/internal/nixtest"
	"github.com/tbfg/tbfg-node/store"
)

// runDrv runs the CLI with args and returns its exit code and output.
func runDrv(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), &stdio{in: strings.NewReader(""), out: &out, err: &errOut}, args)
	return code, out.String(), errOut.String()
}

const minimalDrvOut = "/gnu/store/280xcws0xz6c1gx6721jyj2d8j0ly9gz-minimal"

// writeMinimalDrv copies Guix's minimal.drv into a fresh directory, with old
// replaced by new, and returns the copy's file name.
func writeMinimalDrv(t *testing.T, old, new string) string {
	t.Helper()
	data, err := os.ReadFile("../../store/derivation/testdata/minimal.drv")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "minimal.drv")
	if err := os.WriteFile(file, bytes.ReplaceAll(data, []byte(old), []byte(new)), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

func TestDrvPathMinimal(t *testing.T) {
	wrong := "/gnu/store/00000000000000000000000000000000-minimal"
	tests := []struct {
		name, old, new string
		code           int
		stdout         string
		stderr         []string
	}{
		{"valid", "", "", 0, "/gnu/store/w9krgvil6919s2ghqgx443zb9krx75s6-minimal.drv\n", nil},
		{"wrong output path", minimalDrvOut, wrong, 1, "", []string{
			`output "out": path is ` + wrong + `, want ` + minimalDrvOut,
			`output "out": environment variable out is ` + wrong + `, want ` + minimalDrvOut,
		}},
		{"syntax error", `"x86_64-linux"`, `x86_64-linux"`, 1, "", []string{"derivation line 1, column 84: expected '\"', found 'x'"}},
		{"not canonical", `("PATH","/bin"),("out","` + minimalDrvOut + `")`, `("out","` + minimalDrvOut + `"),("PATH","/bin")`, 1, "", []string{"not in canonical form"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := writeMinimalDrv(t, tt.old, tt.new)
			code, stdout, stderr := runDrv(t, "drv", "path", file)
			if code != tt.code || stdout != tt.stdout {
				t.Errorf("exit %d, stdout %q; want %d, %q (stderr %q)", code, stdout, tt.code, tt.stdout, stderr)
			}
			for _, want := range tt.stderr {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr %q does not say %q", stderr, want)
				}
			}
		})
	}
}

// TestDrvPathFileName checks that a file named like a store item must hold
// the contents that give that name.
func TestDrvPathFileName(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile(writeMinimalDrv(t, "", ""))
	if err != nil {
		t.Fatal(err)
	}
	for base, want := range map[string]string{
		"w9krgvil6919s2ghqgx443zb9krx75s6-minimal.drv": "",
		"00000000000000000000000000000000-minimal.drv": "contents give /gnu/store/w9krgvil6919s2ghqgx443zb9krx75s6-minimal.drv, not the file's name",
	} {
		file := filepath.Join(dir, base)
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
		code, _, stderr := runDrv(t, "drv", "path", file)
		if want == "" && code != 0 || want != "" && (code != 1 || !strings.Contains(stderr, want)) {
			t.Errorf("%s: exit %d, %q; want error %q", base, code, stderr, want)
		}
	}
}

func TestDrvUsage(t *testing.T) {
	if code, _, stderr := runDrv(t, "drv", "path"); code != 2 || !strings.Contains(stderr, "usage: tbfg-node drv path") {
		t.Errorf("no FILE: exit %d, %q", code, stderr)
	}
	if code, _, stderr := runDrv(t, "drv", "show", "--store-dir", "gnu/store", "x.drv"); code != 1 || !strings.Contains(stderr, "--store-dir") {
		t.Errorf("relative store dir: exit %d, %q", code, stderr)
	}
	if code, _, stderr := runDrv(t, "drv", "show", filepath.Join(t.TempDir(), "missing.drv")); code != 1 || !strings.Contains(stderr, "no such file") {
		t.Errorf("missing file: exit %d, %q", code, stderr)
	}
}

// TestDrvAgainstNix has Nix 2.8 instantiate the test derivations of
// store/derivation in Guix- and Nix-layout stores, then checks that drv path
// prints the paths Nix chose, reading input derivations from the store's real
// directory, and that drv show prints what nix show-derivation prints.
func TestDrvAgainstNix(t *testing.T) {
	for _, dir := range []store.Dir{store.GuixDir, store.NixDir} {
		t.Run(string(dir), func(t *testing.T) {
			n := nixtest.New(t, dir)
			files, err := filepath.Glob("../../store/derivation/testdata/nix/*.nix")
			if err != nil || len(files) < 5 {
				t.Fatalf("test expressions: %v, %v", files, err)
			}
			top := strings.Fields(n.Run(t, "nix-instantiate", files...))
			var drvs []string
			for _, p := range strings.Fields(n.Run(t, "nix-store", append([]string{"-qR"}, top...)...)) {
				if strings.HasSuffix(p, ".drv") {
					drvs = append(drvs, p)
				}
			}
			checkDrvPath(t, n, drvs)
			checkDrvShow(t, n, drvs)
			checkMissingInput(t, n, drvs)
		})
	}
}

func checkDrvPath(t *testing.T, n *nixtest.Nix, drvs []string) {
	args := []string{"drv", "path", "--store-dir", string(n.StoreDir)}
	for _, p := range drvs {
		args = append(args, n.RealPath(store.Path(p)))
	}
	code, stdout, stderr := runDrv(t, args...)
	if want := strings.Join(drvs, "\n") + "\n"; code != 0 || stdout != want {
		t.Errorf("drv path: exit %d\n%s\nwant\n%s\nstderr: %s", code, stdout, want, stderr)
	}
}

func checkDrvShow(t *testing.T, n *nixtest.Nix, drvs []string) {
	args := []string{"drv", "show", "--store-dir", string(n.StoreDir)}
	for _, p := range drvs {
		args = append(args, n.RealPath(store.Path(p)))
	}
	code, stdout, stderr := runDrv(t, args...)
	if code != 0 {
		t.Fatalf("drv show: exit %d: %s", code, stderr)
	}
	var ours, nix any
	if err := json.Unmarshal([]byte(stdout), &ours); err != nil {
		t.Fatal(err)
	}
	nixOut := n.Run(t, "nix", append([]string{"show-derivation"}, drvs...)...)
	if err := json.Unmarshal([]byte(nixOut), &nix); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ours, nix) {
		t.Errorf("drv show printed\n%s\nnix show-derivation printed\n%s", stdout, nixOut)
	}
	// Beyond meaning, the layout is Nix's too: same indentation, key order
	// and escapes.
	if strings.TrimSpace(stdout) != nixOut {
		t.Errorf("drv show output differs from nix show-derivation's in layout")
	}
}

// checkMissingInput copies a derivation without its inputs and checks that
// drv path names the input it could not read.
func checkMissingInput(t *testing.T, n *nixtest.Nix, drvs []string) {
	var chain store.Path
	for _, p := range drvs {
		if strings.HasSuffix(p, "-chain.drv") {
			chain = store.Path(p)
		}
	}
	data, err := os.ReadFile(n.RealPath(chain))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), chain.Base())
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runDrv(t, "drv", "path", "--store-dir", string(n.StoreDir), file)
	if code != 1 || !strings.Contains(stderr, "load input derivation "+string(n.StoreDir)) || !strings.Contains(stderr, "no such file") {
		t.Errorf("chain.drv without inputs: exit %d, %q", code, stderr)
	}
}
