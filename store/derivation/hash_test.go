package derivation

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tbfg/tbfg-node/store"
)

// countingLoader counts the loads it serves from a mapLoader.
type countingLoader struct {
	m     mapLoader
	loads map[store.Path]int
}

func (c *countingLoader) Load(p store.Path) (*Derivation, error) {
	c.loads[p]++
	return c.m.Load(p)
}

const (
	drvA = store.Path("/gnu/store/280xcws0xz6c1gx6721jyj2d8j0ly9gz-a.drv")
	drvB = store.Path("/gnu/store/1162fr407rbzvvi92ijgcx323q4zvq1n-b.drv")
)

func leaf() *Derivation {
	return &Derivation{
		Outputs: map[string]Output{"out": {}},
		System:  "x86_64-linux", Builder: "/bin/sh",
		Env: map[string]string{"out": ""},
	}
}

func withInputs(inputs ...store.Path) *Derivation {
	d := leaf()
	d.InputDrvs = make(map[store.Path][]string)
	for _, p := range inputs {
		d.InputDrvs[p] = []string{"out"}
	}
	return d
}

func TestHasherErrors(t *testing.T) {
	fixed := Output{Path: "/gnu/store/280xcws0xz6c1gx6721jyj2d8j0ly9gz-f", HashAlgo: "sha256", Hash: strings.Repeat("0", 64)}
	tests := []struct {
		name   string
		loader mapLoader
		drv    *Derivation
		want   error
	}{
		{"missing input", mapLoader{}, withInputs(drvA), os.ErrNotExist},
		{"self cycle", mapLoader{drvA: withInputs(drvA)}, withInputs(drvA), ErrCycle},
		{"two-step cycle", mapLoader{drvA: withInputs(drvB), drvB: withInputs(drvA)}, withInputs(drvA), ErrCycle},
		{"fixed with two outputs", mapLoader{}, &Derivation{Outputs: map[string]Output{"out": fixed, "dev": {}}}, ErrFixedOutput},
		{"fixed not named out", mapLoader{}, &Derivation{Outputs: map[string]Output{"bin": fixed}}, ErrFixedOutput},
		{"bad fixed input", mapLoader{drvA: {Outputs: map[string]Output{"out": {HashAlgo: "sha256", Hash: "00"}}}}, withInputs(drvA), ErrFixedOutput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewHasher(store.GuixDir, tt.loader).OutputPaths(tt.drv, "x")
			if !errors.Is(err, tt.want) {
				t.Errorf("error = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestHasherMemo checks that an input shared by many derivations is loaded
// once, and that the remembered hash gives the same paths as a fresh Hasher.
func TestHasherMemo(t *testing.T) {
	l := &countingLoader{m: mapLoader{drvA: leaf(), drvB: withInputs(drvA)}, loads: map[store.Path]int{}}
	h := NewHasher(store.GuixDir, l)
	top := withInputs(drvA, drvB)
	first, err := h.OutputPaths(top, "top")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.OutputPaths(withInputs(drvB), "other"); err != nil {
		t.Fatal(err)
	}
	if l.loads[drvA] != 1 || l.loads[drvB] != 1 {
		t.Errorf("loads %v, want one each", l.loads)
	}
	again, err := NewHasher(store.GuixDir, l.m).OutputPaths(top, "top")
	if err != nil || again["out"] != first["out"] {
		t.Errorf("fresh hasher: %v, %v; memoised: %v", again, err, first)
	}
}

func TestDirLoader(t *testing.T) {
	root := t.TempDir()
	data, err := os.ReadFile("testdata/minimal.drv")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, drvA.Base()), data, 0o644); err != nil {
		t.Fatal(err)
	}
	l := DirLoader{Root: root, Dir: store.GuixDir}
	if d, err := l.Load(drvA); err != nil || d.Builder != "/bin/sh" {
		t.Fatalf("Load: %+v, %v", d, err)
	}
	for _, p := range []store.Path{"/nix/store/280xcws0xz6c1gx6721jyj2d8j0ly9gz-a.drv", "/gnu/store/../etc/passwd", drvB} {
		if _, err := l.Load(p); err == nil {
			t.Errorf("Load(%s) succeeded", p)
		}
	}
}

func TestName(t *testing.T) {
	tests := []struct {
		name string
		drv  *Derivation
		want string
	}{
		{"out path", &Derivation{Outputs: map[string]Output{"out": {Path: "/gnu/store/280xcws0xz6c1gx6721jyj2d8j0ly9gz-hello-2.12"}}}, "hello-2.12"},
		{"other output", &Derivation{Outputs: map[string]Output{"doc": {Path: "/gnu/store/280xcws0xz6c1gx6721jyj2d8j0ly9gz-hello-doc"}}}, "hello"},
		{"variable", &Derivation{Outputs: map[string]Output{"out": {}}, Env: map[string]string{"name": "x"}}, "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := tt.drv.Name(); err != nil || got != tt.want {
				t.Errorf("Name() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	if _, err := leaf().Name(); !errors.Is(err, ErrNoName) {
		t.Errorf("nameless: %v", err)
	}
}
