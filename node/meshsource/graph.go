package meshsource

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/tbfg/tbfg-node/scheduler"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/derivation"
	"github.com/tbfg/tbfg-node/store/local"
)

// Graph reads the .drv files drvs and their input derivations from st and
// returns them as the derivations of a Submit command, inputs first.
func Graph(st *local.Store, drvs ...store.Path) ([]scheduler.Derivation, error) {
	g := &graph{loader: derivation.DirLoader{Root: st.RealDir(), Dir: st.Dir()}, seen: map[store.Path]bool{}}
	for _, d := range drvs {
		if err := g.visit(d); err != nil {
			return nil, err
		}
	}
	return g.out, nil
}

type graph struct {
	loader derivation.DirLoader
	seen   map[store.Path]bool
	out    []scheduler.Derivation
}

func (g *graph) visit(p store.Path) error {
	if g.seen[p] {
		return nil
	}
	g.seen[p] = true
	drv, err := g.loader.Load(p)
	if err != nil {
		return fmt.Errorf("derivation %s: %w", p, err)
	}
	inputs := slices.Sorted(maps.Keys(drv.InputDrvs))
	for _, in := range inputs {
		if err := g.visit(in); err != nil {
			return err
		}
	}
	g.out = append(g.out, schedulerDerivation(p, drv, inputs))
	return nil
}

// schedulerDerivation is the part of drv the scheduler needs.
func schedulerDerivation(p store.Path, drv *derivation.Derivation, inputs []store.Path) scheduler.Derivation {
	sd := scheduler.Derivation{Path: string(p), System: drv.System,
		Features: strings.Fields(drv.Env["requiredSystemFeatures"])}
	for _, id := range slices.Sorted(maps.Keys(drv.Outputs)) {
		sd.Outputs = append(sd.Outputs, scheduler.Output{Name: id, Path: string(drv.Outputs[id].Path)})
	}
	for _, in := range inputs {
		sd.Inputs = append(sd.Inputs, scheduler.Input{Drv: string(in), Outputs: slices.Clone(drv.InputDrvs[in])})
	}
	for _, src := range drv.InputSrcs {
		sd.Sources = append(sd.Sources, string(src))
	}
	return sd
}

// Items returns the signed state records of paths and their closures in st,
// e.g. the .drv files and sources a Submit registers as held by the
// submitting node.
func (s *Signer) Items(st *local.Store, paths ...store.Path) ([]scheduler.Item, error) {
	closure, err := st.Closure(paths...)
	if err != nil {
		return nil, fmt.Errorf("closure: %w", err)
	}
	items := make([]scheduler.Item, 0, len(closure))
	for _, p := range closure {
		info, err := st.Query(p)
		if err != nil {
			return nil, err
		}
		it, err := s.Item(info, "")
		if err != nil {
			return nil, err
		}
		items = append(items, it)
	}
	return items, nil
}
