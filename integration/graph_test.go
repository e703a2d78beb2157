package integration

import (
	"fmt"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/drvgraph"
	"github.com/tbfg/tbfg-node/store"
)

// drvGraph is a derivation graph written as .drv files into a directory laid
// out like a copy of a store: each file under its store base name.
type drvGraph struct {
	dir    string
	leaves []store.Path
	tops   []store.Path
	inputs map[store.Path][]store.Path // .drv → its input .drv files
	g      *drvgraph.Graph
}

// files are the absolute names of every .drv file of g, leaves first.
func (g *drvGraph) files() []string { return g.g.Files(g.dir) }

// writeGraph writes leaves independent derivations and tops derivations
// that each depend on per leaves (taken in turn) into dir, for system. Every
// derivation sleeps sleep seconds while it builds.
func writeGraph(t *testing.T, dir, system string, leaves, tops, per, sleep int) *drvGraph {
	t.Helper()
	g, err := drvgraph.New(drvgraph.Options{System: system, Leaves: leaves, Tops: tops, PerTop: per, Sleep: sleep})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Write(dir); err != nil {
		t.Fatal(err)
	}
	return &drvGraph{dir: dir, leaves: g.Leaves, tops: g.Tops, inputs: g.Inputs, g: g}
}

// newGraph generates a graph for this machine's system with opts, under a
// fresh tag so that its store paths are new to every run, and writes it into
// a new temporary directory, which it returns.
func newGraph(t *testing.T, opts drvgraph.Options) (*drvgraph.Graph, string) {
	t.Helper()
	opts.System, opts.Tag = nativeSystem(), fmt.Sprint(time.Now().UnixNano())
	g, err := drvgraph.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := g.Write(dir); err != nil {
		t.Fatal(err)
	}
	return g, dir
}
