package drvgraph

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/derivation"
)

// MaxDerivations bounds the size of one graph.
const MaxDerivations = 10000

// ErrOptions is wrapped by every error of Options.Validate.
var ErrOptions = errors.New("invalid graph options")

// Options says what graph New makes. The zero value of every field but
// System means "none" or the default.
type Options struct {
	// StoreDir is the logical store directory of every path; default
	// /gnu/store.
	StoreDir store.Dir
	// System is the system type of every derivation, e.g. x86_64-linux.
	System string
	// Tag goes into every derivation's environment, so graphs made with
	// different tags share no derivation (e.g. a run's start time).
	Tag string
	// Chain is the length of the toolchain chain: toolchain-1 depends on
	// toolchain-0, and so on.
	Chain int
	// Leaves is the number of leaf derivations, each depending on the last
	// link of the chain, if any.
	Leaves int
	// Tops is the number of top derivations, each depending on PerTop
	// leaves taken in turn.
	Tops int
	// PerTop is the number of inputs of each top; default 1 when there are
	// tops.
	PerTop int
	// Sleep is the seconds every derivation sleeps while building.
	Sleep int
	// SlowEvery makes every SlowEvery-th leaf (the last of each run of
	// SlowEvery) sleep SlowSleep seconds instead of Sleep; 0 for none.
	SlowEvery int
	// SlowSleep is the seconds a slow leaf sleeps.
	SlowSleep int
	// BuildOnly makes inputs build-time only, as a compiler is: a builder
	// reads its inputs but its output names none of them, so it refers to
	// nothing.
	BuildOnly bool
	// Fill adds a file of about this many bytes of filler (whole lines of
	// 64) to every output, for tests of store sizes; 0 for none.
	Fill int
	// Fail adds "broken", which fails on purpose, and "needs-broken", which
	// depends on it and so can never build.
	Fail bool
}

// Validate fills in defaults and rejects options that make no graph.
func (o *Options) Validate() error {
	if o.StoreDir == "" {
		o.StoreDir = store.GuixDir
	}
	if err := o.StoreDir.Validate(); err != nil {
		return fmt.Errorf("%w: store dir: %w", ErrOptions, err)
	}
	if o.PerTop == 0 && o.Tops > 0 {
		o.PerTop = 1
	}
	switch {
	case o.System == "" || strings.ContainsAny(o.System, "\"\\\n"):
		return fmt.Errorf("%w: system %q", ErrOptions, o.System)
	case o.Chain < 0 || o.Leaves < 0 || o.Tops < 0 || o.PerTop < 0:
		return fmt.Errorf("%w: chain, leaves, tops and per-top must not be negative", ErrOptions)
	case o.Tops > 0 && o.PerTop > o.Leaves:
		return fmt.Errorf("%w: %d inputs per top but only %d leaves", ErrOptions, o.PerTop, o.Leaves)
	case o.Sleep < 0 || o.SlowSleep < 0 || o.SlowEvery < 0:
		return fmt.Errorf("%w: sleeps must not be negative", ErrOptions)
	case o.Fill < 0:
		return fmt.Errorf("%w: fill must not be negative", ErrOptions)
	case o.count() == 0:
		return fmt.Errorf("%w: no derivations", ErrOptions)
	case o.count() > MaxDerivations:
		return fmt.Errorf("%w: %d derivations, over %d", ErrOptions, o.count(), MaxDerivations)
	}
	return nil
}

// count is the number of derivations the options make.
func (o *Options) count() int {
	n := o.Chain + o.Leaves + o.Tops
	if o.Fail {
		n += 2
	}
	return n
}

// Graph is a generated derivation graph.
type Graph struct {
	// StoreDir is the logical store directory of every path.
	StoreDir store.Dir
	// Chain, Leaves and Tops are the .drv paths of each part, in order.
	Chain, Leaves, Tops []store.Path
	// Failing is the derivation that fails on purpose and FailedDependent
	// the one that depends on it; both empty unless Options.Fail.
	Failing, FailedDependent store.Path
	// Order lists every .drv path, inputs before their dependents.
	Order []store.Path
	// Drvs holds every derivation by its .drv path.
	Drvs map[store.Path]*derivation.Derivation
	// Inputs holds the input .drv paths of every derivation.
	Inputs map[store.Path][]store.Path
}

// New generates the graph o describes.
func New(o Options) (*Graph, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	b := &builder{o: o, g: &Graph{
		StoreDir: o.StoreDir,
		Drvs:     map[store.Path]*derivation.Derivation{},
		Inputs:   map[store.Path][]store.Path{},
	}}
	b.h = derivation.NewHasher(o.StoreDir, b)
	if err := b.build(); err != nil {
		return nil, err
	}
	return b.g, nil
}

// Output is the path of the "out" output of the derivation at drv.
func (g *Graph) Output(drv store.Path) store.Path {
	if d := g.Drvs[drv]; d != nil {
		return d.Outputs["out"].Path
	}
	return ""
}

// Files returns the names the .drv files of g have in dir, in Order.
func (g *Graph) Files(dir string) []string {
	out := make([]string, 0, len(g.Order))
	for _, p := range g.Order {
		out = append(out, filepath.Join(dir, p.Base()))
	}
	return out
}

// Write writes every .drv file of g into dir under its base name. Each file
// appears whole or not at all: it is written to a temporary name first.
func (g *Graph) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write graph: %w", err)
	}
	for _, p := range g.Order {
		if err := writeFile(filepath.Join(dir, p.Base()), g.Drvs[p].Bytes()); err != nil {
			return fmt.Errorf("write graph: %w", err)
		}
	}
	return nil
}

// writeFile writes data to name through a temporary file in the same
// directory, so a reader never sees part of it.
func writeFile(name string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(name), ".drvgraph-*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	err = errors.Join(err, f.Chmod(0o644), f.Close())
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}
