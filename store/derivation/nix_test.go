package derivation

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tbfg/tbfg-node/internal/nixtest"
	"github.com/tbfg/tbfg-node/store"
)

// nixExpressions are the files under testdata/nix that the tests instantiate.
var nixExpressions = []string{"simple.nix", "multi-output.nix", "fixed.nix", "inputs.nix", "chain.nix"}

// TestAgainstNix has real Nix 2.8 instantiate the derivations under
// testdata/nix in a Guix-layout store and a Nix-layout one, and checks every
// .drv file of their closure: it prints back byte for byte, its own store
// path and output paths are the ones Nix gave, and filling its outputs in
// from placeholders gives Nix's file again.
func TestAgainstNix(t *testing.T) {
	for _, dir := range []store.Dir{store.GuixDir, store.NixDir} {
		t.Run(string(dir), func(t *testing.T) {
			n := nixtest.New(t, dir)
			drvs, shown := instantiate(t, n)
			h := NewHasher(dir, DirLoader{Root: n.RealStoreDir, Dir: dir})
			for _, p := range drvs {
				t.Run(p.Name(), func(t *testing.T) { checkNixDrv(t, n, h, p, shown[string(p)]) })
			}
		})
	}
}

// nixShown is the part of `nix show-derivation` output the tests compare.
type nixShown struct {
	Outputs map[string]struct {
		Path     store.Path `json:"path"`
		HashAlgo string     `json:"hashAlgo"`
		Hash     string     `json:"hash"`
	} `json:"outputs"`
}

// instantiate runs nix-instantiate on nixExpressions and returns every .drv
// path in the closure of the results with what nix show-derivation says of it.
func instantiate(t *testing.T, n *nixtest.Nix) ([]store.Path, map[string]nixShown) {
	t.Helper()
	var files []string
	for _, f := range nixExpressions {
		abs, err := filepath.Abs(filepath.Join("testdata", "nix", f))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, abs)
	}
	top := strings.Fields(n.Run(t, "nix-instantiate", files...))
	var drvs []store.Path
	for _, p := range strings.Fields(n.Run(t, "nix-store", append([]string{"-qR"}, top...)...)) {
		if strings.HasSuffix(p, ".drv") {
			drvs = append(drvs, store.Path(p))
		}
	}
	if len(drvs) != 9 {
		t.Fatalf("closure has %d derivations: %v", len(drvs), drvs)
	}
	args := []string{"show-derivation"}
	for _, p := range drvs {
		args = append(args, string(p))
	}
	shown := make(map[string]nixShown)
	if err := json.Unmarshal([]byte(n.Run(t, "nix", args...)), &shown); err != nil {
		t.Fatal(err)
	}
	return drvs, shown
}

func checkNixDrv(t *testing.T, n *nixtest.Nix, h *Hasher, p store.Path, shown nixShown) {
	data, err := os.ReadFile(n.RealPath(p))
	if err != nil {
		t.Fatal(err)
	}
	d, err := Parse(data, n.StoreDir)
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Bytes(); !bytes.Equal(got, data) {
		t.Fatalf("printed\n%s\nNix wrote\n%s", got, data)
	}
	name, err := NameFromPath(p)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := StorePath(n.StoreDir, d, name); err != nil || got != p {
		t.Errorf("StorePath = %s, %v; Nix made %s", got, err, p)
	}
	paths, err := h.OutputPaths(d, name)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != len(shown.Outputs) {
		t.Errorf("computed outputs %v, Nix shows %v", paths, shown.Outputs)
	}
	for id, o := range shown.Outputs {
		if paths[id] != o.Path {
			t.Errorf("output %s: computed %s, Nix shows %s", id, paths[id], o.Path)
		}
	}
	if err := h.Check(d, name); err != nil {
		t.Error(err)
	}
	checkFill(t, h, d, name, data)
}

// checkFill empties d's output paths and output variables, as they are before
// nix-instantiate computes them, and checks that Fill restores want exactly.
func checkFill(t *testing.T, h *Hasher, d *Derivation, name string, want []byte) {
	for id, o := range d.Outputs {
		o.Path = ""
		d.Outputs[id] = o
		d.Env[id] = ""
	}
	if d.IsFixed() {
		// A fixed output's path comes from its hash; Fill must work without it.
		d.Outputs["out"] = Output{HashAlgo: d.Outputs["out"].HashAlgo, Hash: d.Outputs["out"].Hash}
	}
	if err := h.Fill(d, name); err != nil {
		t.Fatal(err)
	}
	if got := d.Bytes(); !bytes.Equal(got, want) {
		t.Errorf("filled placeholders give\n%s\nwant\n%s", got, want)
	}
}
