package meshsource

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tbfg/tbfg-node/internal/nixtest"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/local"
)

// instantiate has real Nix instantiate testdata/import.nix in a /gnu/store
// chroot store and returns it and the top .drv.
func instantiate(t *testing.T) (*nixtest.Nix, store.Path) {
	n := nixtest.New(t, store.GuixDir)
	expr, err := filepath.Abs(filepath.Join("testdata", "import.nix"))
	if err != nil {
		t.Fatal(err)
	}
	return n, store.Path(n.Run(t, "nix-instantiate", expr))
}

func openStore(t *testing.T) *local.Store {
	st, err := local.Open(filepath.Join(t.TempDir(), "store"), store.GuixDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestImportDrvsLikeNix imports a .drv closure from Nix's store directory and
// checks every item against what Nix records: NarHash, references.
func TestImportDrvsLikeNix(t *testing.T) {
	n, top := instantiate(t)
	st := openStore(t)
	drvs, err := ImportDrvs(context.Background(), st, n.RealStoreDir, top)
	if err != nil {
		t.Fatal(err)
	}
	if len(drvs) != 2 || drvs[1] != top {
		t.Errorf("imported derivations %v", drvs)
	}
	closure := strings.Fields(n.Run(t, "nix-store", "-q", "--requisites", string(top)))
	if len(closure) != 5 {
		t.Errorf("Nix's closure of %s: %v", top, closure)
	}
	for _, p := range closure {
		info, err := st.Query(store.Path(p))
		if err != nil {
			t.Errorf("%s not imported: %v", p, err)
			continue
		}
		if want := n.Run(t, "nix-store", "-q", "--hash", p); info.NarHash() != want {
			t.Errorf("%s: NarHash %s, Nix has %s", p, info.NarHash(), want)
		}
		var refs []string
		for _, r := range info.References {
			refs = append(refs, string(r))
		}
		want := strings.Fields(n.Run(t, "nix-store", "-q", "--references", p))
		slices.Sort(want)
		if !slices.Equal(refs, want) {
			t.Errorf("%s: references %v, Nix has %v", p, refs, want)
		}
	}
	g, err := Graph(st, top)
	if err != nil {
		t.Fatal(err)
	}
	if len(g) != 2 || g[1].Path != string(top) || len(g[1].Inputs) != 1 || g[1].Inputs[0].Drv != g[0].Path ||
		len(g[1].Sources) != 2 || !slices.Equal(g[1].Features, []string{"big-parallel"}) {
		t.Errorf("graph %+v", g)
	}
}

// TestImportDrvsRefusesTampered checks that a .drv or source whose contents
// no longer give its path is refused, and nothing is added.
func TestImportDrvsRefusesTampered(t *testing.T) {
	n, top := instantiate(t)
	cases := []struct{ name, suffix, old, new string }{
		{"input derivation", "-dep.drv", "echo dep", "echo pwn"},
		{"source by content", "-data.txt", "data", "DATA"},
		{"text source", "-helper.sh", "helper", "HELPER"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			if err := os.CopyFS(root, os.DirFS(n.RealStoreDir)); err != nil {
				t.Fatal(err)
			}
			entries, _ := os.ReadDir(root)
			var victim string
			for _, e := range entries {
				if strings.HasSuffix(e.Name(), c.suffix) {
					victim = filepath.Join(root, e.Name())
				}
			}
			data, err := os.ReadFile(victim)
			if err != nil {
				t.Fatal(err)
			}
			os.Chmod(victim, 0o644)
			if err := os.WriteFile(victim, []byte(strings.Replace(string(data), c.old, c.new, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			st := openStore(t)
			_, err = ImportDrvs(context.Background(), st, root, top)
			if !errors.Is(err, ErrBadDerivation) {
				t.Fatalf("import: %v, want %v", err, ErrBadDerivation)
			}
			if valid, _ := st.Valid(); len(valid) != 0 {
				t.Errorf("items of a tampered closure imported: %v", valid)
			}
		})
	}
}
