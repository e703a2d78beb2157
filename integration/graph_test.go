package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/derivation"
)

// drvGraph is a derivation graph written as .drv files into a directory laid
// out like a copy of a store: each file under its store base name.
type drvGraph struct {
	dir    string
	leaves []store.Path
	tops   []store.Path
	inputs map[store.Path][]store.Path // .drv → its input .drv files
}

// files are the absolute names of every .drv file of g, leaves first.
func (g *drvGraph) files() []string {
	var out []string
	for _, p := range append(append([]store.Path{}, g.leaves...), g.tops...) {
		out = append(out, filepath.Join(g.dir, p.Base()))
	}
	return out
}

// writeGraph writes leaves independent derivations and tops derivations
// that each depend on per leaves (taken in turn) into dir, for system.
func writeGraph(t *testing.T, dir, system string, leaves, tops, per int) *drvGraph {
	t.Helper()
	g := &drvGraph{dir: dir, inputs: map[store.Path][]store.Path{}}
	for i := range leaves {
		g.leaves = append(g.leaves, writeDrv(t, g, system, fmt.Sprintf("leaf-%d", i), nil))
	}
	for i := range tops {
		var ins []store.Path
		for j := range per {
			ins = append(ins, g.leaves[(i*per+j)%leaves])
		}
		g.tops = append(g.tops, writeDrv(t, g, system, fmt.Sprintf("top-%d", i), ins))
	}
	return g
}

// writeDrv makes a derivation named name with inputs, fills in its output
// path as Guix would, and writes it under its store path's base name.
func writeDrv(t *testing.T, g *drvGraph, system, name string, inputs []store.Path) store.Path {
	t.Helper()
	d := &derivation.Derivation{
		Outputs:   map[string]derivation.Output{"out": {}},
		InputDrvs: map[store.Path][]string{},
		System:    system,
		Builder:   "/bin/sh",
		Args:      []string{"-c", "echo " + name + " > $out"},
		Env:       map[string]string{"name": name, "system": system, "builder": "/bin/sh", "out": ""},
	}
	for _, in := range inputs {
		d.InputDrvs[in] = []string{"out"}
	}
	h := derivation.NewHasher(store.GuixDir, derivation.DirLoader{Root: g.dir, Dir: store.GuixDir})
	if err := h.Fill(d, name); err != nil {
		t.Fatal(err)
	}
	p, err := derivation.StorePath(store.GuixDir, d, name)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(g.dir, p.Base()), d.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	g.inputs[p] = inputs
	return p
}
