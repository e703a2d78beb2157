package node

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tbfg/tbfg-node/scheduler"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/derivation"
	"github.com/tbfg/tbfg-node/store/local"
)

// submitBatch is the most derivations one Submit command carries; larger
// graphs are split (scheduler.SplitSubmit) so that no log entry gets huge.
const submitBatch = 2000

// drvGraph is the checked .drv closure of a submission.
type drvGraph struct {
	roots []store.Path
	drvs  map[store.Path]*derivation.Derivation
}

// Submit reads the .drv closure of every requested derivation, checks that
// every output path and every .drv path recomputes, imports the .drv files
// into the node's store and submits the whole graph to the build queue.
// Nothing is submitted if any derivation is wrong.
func (n *Node) Submit(ctx context.Context, req SubmitRequest) (SubmitResult, error) {
	if !n.running() {
		return SubmitResult{}, n.notReady()
	}
	if len(req.Derivations) == 0 {
		return SubmitResult{}, fmt.Errorf("%w: no derivations given", ErrBadRequest)
	}
	g, err := n.loadGraph(req.Derivations)
	if err != nil {
		return SubmitResult{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	cmd, err := n.submitCommand(ctx, g, req)
	if err != nil {
		return SubmitResult{}, err
	}
	if err := n.ensureJoined(ctx); err != nil {
		return SubmitResult{}, err
	}
	ids, err := n.applySubmit(ctx, cmd)
	if err != nil {
		return SubmitResult{}, err
	}
	return n.submitResult(g, cmd.Derivations, ids), nil
}

// loadGraph resolves each argument to a .drv path and reads the closure of
// input derivations, from the node's store for items valid there and from
// the directories of the files named otherwise.
func (n *Node) loadGraph(args []string) (*drvGraph, error) {
	l := &graphLoader{store: n.store, cache: map[store.Path]*derivation.Derivation{}}
	g := &drvGraph{drvs: l.cache}
	for _, a := range args {
		p, err := l.resolve(n.store.Dir(), a)
		if err != nil {
			return nil, err
		}
		g.roots = append(g.roots, p)
	}
	h := derivation.NewHasher(n.store.Dir(), l)
	queue := slices.Clone(g.roots)
	seen := map[store.Path]bool{}
	for len(queue) > 0 {
		p := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		if seen[p] {
			continue
		}
		seen[p] = true
		d, err := l.Load(p)
		if err != nil {
			return nil, err
		}
		if err := checkDrv(n.store.Dir(), h, p, d); err != nil {
			return nil, err
		}
		for in := range d.InputDrvs {
			queue = append(queue, in)
		}
	}
	return g, nil
}

// checkDrv checks that d's output paths recompute and that its contents are
// those of the store item p.
func checkDrv(dir store.Dir, h *derivation.Hasher, p store.Path, d *derivation.Derivation) error {
	name, err := derivation.NameFromPath(p)
	if err != nil {
		return err
	}
	if err := h.Check(d, name); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	want, err := derivation.StorePath(dir, d, name)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if want != p {
		return fmt.Errorf("%s: contents belong to %s: not a copy of that store item", p, want)
	}
	return nil
}

// graphLoader reads .drv files from the node's store when valid there, else
// from the directories holding the files a submission named.
type graphLoader struct {
	store *local.Store
	dirs  []string
	cache map[store.Path]*derivation.Derivation
}

// resolve turns an argument into a .drv store path: a path valid in the
// store, or a file named <hash>-<name>.drv whose directory is then searched
// for its inputs.
func (l *graphLoader) resolve(dir store.Dir, arg string) (store.Path, error) {
	if p, err := dir.ParsePath(arg); err == nil {
		if ok, err := l.store.IsValid(p); err != nil {
			return "", err
		} else if ok {
			return p, nil
		}
	}
	if !filepath.IsAbs(arg) {
		return "", fmt.Errorf("%s: want a store path or an absolute file name", arg)
	}
	p, err := dir.Join(filepath.Base(arg))
	if err != nil || !strings.HasSuffix(arg, ".drv") {
		return "", fmt.Errorf("%s: file name is not that of a .drv store item (<hash>-<name>.drv)", arg)
	}
	if _, err := os.Stat(arg); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("%s: no such file, and not valid in this node's store (%s)", arg, l.store.RealDir())
		}
		return "", err
	}
	if d := filepath.Dir(arg); !slices.Contains(l.dirs, d) {
		l.dirs = append(l.dirs, d)
	}
	return p, nil
}

// Load implements derivation.Loader.
func (l *graphLoader) Load(p store.Path) (*derivation.Derivation, error) {
	if d, ok := l.cache[p]; ok {
		return d, nil
	}
	roots := l.dirs
	if ok, err := l.store.IsValid(p); err != nil {
		return nil, err
	} else if ok {
		roots = []string{l.store.RealDir()}
	}
	var errs []error
	for _, root := range roots {
		d, err := derivation.DirLoader{Root: root, Dir: l.store.Dir()}.Load(p)
		if err == nil {
			l.cache[p] = d
			return d, nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("%s: not in the node's store", p)
	}
	return nil, errors.Join(errs...)
}

// submitCommand imports the graph's .drv files into the store, inputs
// first, checks that its input sources are valid there, and returns the
// Submit command with the .drv files and sources as items this node holds.
func (n *Node) submitCommand(ctx context.Context, g *drvGraph, req SubmitRequest) (scheduler.Submit, error) {
	cmd := scheduler.Submit{Time: time.Now(), Submitter: req.Submitter, Node: n.mesh.ID(), Priority: req.Priority}
	roots := map[store.Path]bool{}
	for _, r := range g.roots {
		roots[r] = true
	}
	for _, p := range slices.Sorted(maps.Keys(g.drvs)) {
		cmd.Derivations = append(cmd.Derivations, schedulerDrv(p, g.drvs[p], req.Force && roots[p]))
	}
	sorted, err := scheduler.SortDerivations(cmd.Derivations)
	if err != nil {
		return cmd, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	cmd.Derivations = sorted
	sources := map[store.Path]bool{}
	for _, sd := range sorted {
		p := store.Path(sd.Path)
		if err := n.importDrv(ctx, p, g.drvs[p]); err != nil {
			return cmd, err
		}
		for _, s := range g.drvs[p].InputSrcs {
			if err := n.requireValid(s, p); err != nil {
				return cmd, err
			}
			sources[s] = true
		}
	}
	cmd.Items, err = n.items(slices.Concat(pathsOf(sorted), slices.Sorted(maps.Keys(sources))))
	return cmd, err
}

func pathsOf(drvs []scheduler.Derivation) []store.Path {
	out := make([]store.Path, len(drvs))
	for i, d := range drvs {
		out[i] = store.Path(d.Path)
	}
	return out
}

// schedulerDrv is the part of a derivation the build queue keeps.
func schedulerDrv(p store.Path, d *derivation.Derivation, force bool) scheduler.Derivation {
	sd := scheduler.Derivation{Path: string(p), System: d.System, Force: force,
		Features: strings.Fields(d.Env["requiredSystemFeatures"])}
	for _, name := range slices.Sorted(maps.Keys(d.Outputs)) {
		sd.Outputs = append(sd.Outputs, scheduler.Output{Name: name, Path: string(d.Outputs[name].Path)})
	}
	for _, in := range slices.Sorted(maps.Keys(d.InputDrvs)) {
		sd.Inputs = append(sd.Inputs, scheduler.Input{Drv: string(in), Outputs: slices.Sorted(slices.Values(d.InputDrvs[in]))})
	}
	for _, s := range d.InputSrcs {
		sd.Sources = append(sd.Sources, string(s))
	}
	return sd
}

// importDrv adds the .drv file of p to the store unless it is valid there.
// Its references are its input sources and input derivations, as in Guix
// and Nix.
func (n *Node) importDrv(ctx context.Context, p store.Path, d *derivation.Derivation) error {
	if ok, err := n.store.IsValid(p); err != nil || ok {
		return err
	}
	for _, s := range d.InputSrcs {
		if err := n.requireValid(s, p); err != nil {
			return err
		}
	}
	name, err := derivation.NameFromPath(p)
	if err != nil {
		return err
	}
	refs := slices.Concat(d.InputSrcs, slices.Collect(maps.Keys(d.InputDrvs)))
	got, err := n.store.AddText(ctx, name+".drv", d.Bytes(), refs)
	if err != nil {
		return fmt.Errorf("import %s: %w", p, err)
	}
	if got != p {
		return fmt.Errorf("import %s: stored as %s", p, got)
	}
	return nil
}

// requireValid checks that the input source s of drv is valid in the store.
func (n *Node) requireValid(s, drv store.Path) error {
	ok, err := n.store.IsValid(s)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: input source %s of %s is not in this node's store (%s): add it there first",
			ErrBadRequest, s, drv, n.store.RealDir())
	}
	return nil
}

// items describes store items this node holds for the build queue.
func (n *Node) items(paths []store.Path) ([]scheduler.Item, error) {
	out := make([]scheduler.Item, 0, len(paths))
	for _, p := range paths {
		info, err := n.store.Query(p)
		if err != nil {
			return nil, err
		}
		it := scheduler.Item{Path: string(p), NarHash: info.NarHash(), NarSize: uint64(info.Nar.Size),
			Deriver: string(info.Deriver)}
		for _, r := range info.References {
			it.References = append(it.References, string(r))
		}
		out = append(out, it)
	}
	return out, nil
}

// applySubmit commits cmd, split into batches, and returns the build id of
// every derivation. Submitting is idempotent, so a batch applied twice
// across a leader change does no harm.
func (n *Node) applySubmit(ctx context.Context, cmd scheduler.Submit) (map[string]scheduler.BuildID, error) {
	parts, err := scheduler.SplitSubmit(cmd, submitBatch)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	ids := make(map[string]scheduler.BuildID, len(cmd.Derivations))
	for i := range parts {
		resp, err := n.mesh.Apply(ctx, scheduler.Encode(&parts[i]))
		if err != nil {
			return nil, fmt.Errorf("submit: %w", err)
		}
		got, err := scheduler.DecodeSubmitResponse(resp)
		if err != nil || len(got) != len(parts[i].Derivations) {
			return nil, fmt.Errorf("submit: bad answer for %d derivations: %d ids, %v", len(parts[i].Derivations), len(got), err)
		}
		for j, d := range parts[i].Derivations {
			ids[d.Path] = got[j]
		}
	}
	return ids, nil
}

// submitResult lists the submitted builds with their states.
func (n *Node) submitResult(g *drvGraph, drvs []scheduler.Derivation, ids map[string]scheduler.BuildID) SubmitResult {
	res := SubmitResult{Roots: []SubmittedBuild{}, Builds: []SubmittedBuild{}}
	n.fsm.Read(func(st *scheduler.State) {
		entry := func(drv string) SubmittedBuild {
			b := SubmittedBuild{ID: uint64(ids[drv]), Derivation: drv}
			if info, ok := st.Build(ids[drv]); ok {
				b.State = info.State.String()
			}
			return b
		}
		for _, r := range g.roots {
			res.Roots = append(res.Roots, entry(string(r)))
		}
		for _, d := range drvs {
			res.Builds = append(res.Builds, entry(d.Path))
		}
	})
	return res
}
