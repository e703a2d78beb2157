package executor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/derivation"
)

// buildLocked runs the builder with the outputs locked and their old
// leftovers removed, then registers the outputs.
func (b *Builtin) buildLocked(ctx context.Context, req Request, outputs map[string]store.Path, closure []store.Path) (*Result, error) {
	b.removeOutputs(outputs)
	name, err := derivation.NameFromPath(req.DrvPath)
	if err != nil {
		return nil, err
	}
	scratch, err := os.MkdirTemp(b.cfg.BuildDir, "build-"+name+"-")
	if err != nil {
		return nil, err
	}
	defer removeAll(scratch)
	spec, err := b.spec(req.Drv, name, scratch)
	if err != nil {
		return nil, err
	}
	cmd, statusR, statusW, err := helperCommand(spec, filepath.Join(scratch, "spec.json"))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSandbox, err)
	}
	lim := runLimits{timeout: req.Timeout, maxSilent: req.MaxSilent}
	if err := runHelper(ctx, cmd, statusR, statusW, req.Log, lim); err != nil {
		return nil, err
	}
	return b.register(req, outputs, closure)
}

// spec describes the namespace and the builder run for d.
func (b *Builtin) spec(d *derivation.Derivation, name, scratch string) (*sandboxSpec, error) {
	st := b.cfg.Store
	top := filepath.Join(scratch, "top")
	root := filepath.Join(scratch, "root")
	for _, dir := range []string{top, root} {
		if err := os.Mkdir(dir, 0o700); err != nil {
			return nil, err
		}
	}
	inside := buildDirInside(st.Dir(), name)
	env, err := buildEnv(d, st.Dir(), b.cfg.Cores, inside, top)
	if err != nil {
		return nil, err
	}
	spec := &sandboxSpec{
		Root: root, StoreDir: string(st.Dir()), RealStore: st.RealDir(),
		BuildDir: top, BuildDirInside: inside,
		Builder: d.Builder, Args: d.Args, Env: env,
	}
	targets := make([]string, 0, len(b.cfg.SandboxPaths))
	for t := range b.cfg.SandboxPaths {
		targets = append(targets, t)
	}
	sort.Strings(targets)
	for _, t := range targets {
		spec.Mounts = append(spec.Mounts, mount{Target: t, Source: b.cfg.SandboxPaths[t]})
	}
	return spec, nil
}

// removeAll removes a build's scratch directory, which the builder may have
// left read-only.
func removeAll(dir string) {
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o755)
		}
		return nil
	})
	os.RemoveAll(dir)
}

// candidates are the paths an output may refer to: the input closure and
// the derivation's own outputs.
func candidates(closure []store.Path, outputs map[string]store.Path) []store.Path {
	out := slices.Clone(closure)
	for _, p := range outputs {
		out = append(out, p)
	}
	return out
}
