package node

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tbfg/tbfg-node/internal/nixtest"
	"github.com/tbfg/tbfg-node/node/adminapi"
	"github.com/tbfg/tbfg-node/store"
)

// TestNodeSubmitNixInstantiated submits a graph that the real Nix
// instantiated in a /gnu/store-layout chroot store, by the .drv file in that
// store's real directory: the node checks and imports the closure, and its
// store records every .drv with the NarHash and references Nix records.
func TestNodeSubmitNixInstantiated(t *testing.T) {
	nix := nixtest.New(t, store.GuixDir)
	expr := filepath.Join(nix.Root, "graph.nix")
	err := os.WriteFile(expr, []byte(`let
  mk = name: deps: derivation { inherit name; system = "x86_64-linux"; builder = "/bin/sh";
    args = ["-c" "echo ${name} ${toString deps} > $out"]; };
  a = mk "a" [];
  b = mk "b" [];
in mk "top" [a b]
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	top := store.Path(nix.Run(t, "nix-instantiate", expr))
	closure := strings.Fields(nix.Run(t, "nix-store", "--query", "--requisites", string(top)))

	dir := t.TempDir()
	cfg := loopbackConfig(t, "n1", ModeInit, dir)
	cfg.Systems = []string{"x86_64-linux"}
	r := startNode(t, cfg)
	c := adminapi.NewClient(dir)
	defer c.Close()
	res, err := c.Submit(context.Background(), adminapi.SubmitRequest{Derivations: []string{nix.RealPath(top)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Roots) != 1 || res.Roots[0].Derivation != string(top) || len(res.Builds) != 3 {
		t.Fatalf("submit result %+v: want %s and 3 builds", res, top)
	}
	for _, p := range closure {
		info, err := r.n.store.Query(store.Path(p))
		if err != nil {
			t.Fatalf("%s not imported: %v", p, err)
		}
		if want := nix.Run(t, "nix-store", "--query", "--hash", p); info.NarHash() != want {
			t.Errorf("%s: NarHash %s, Nix has %s", p, info.NarHash(), want)
		}
		var refs []string
		for _, ref := range info.References {
			refs = append(refs, string(ref))
		}
		want := strings.Fields(nix.Run(t, "nix-store", "--query", "--references", p))
		slices.Sort(want)
		if !slices.Equal(refs, want) {
			t.Errorf("%s: references %q, Nix has %q", p, refs, want)
		}
	}
}
