package executor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/tbfg/tbfg-node/node/executor/sandbox"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/derivation"
)

// job is one run of a builder: the request and what was prepared for it.
type job struct {
	req     Request
	name    string // the derivation's name
	scratch string // the build's private directory below BuildDir
	top     string // the build directory on the host
	inside  string // the build directory as the builder sees it
	env     []string
	outputs map[string]store.Path
	closure []store.Path
}

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
	j := &job{req: req, name: name, scratch: scratch, top: filepath.Join(scratch, "top"),
		inside: buildDirInside(b.cfg.Store.Dir(), name), outputs: outputs, closure: closure}
	if err := os.Mkdir(j.top, 0o700); err != nil {
		return nil, err
	}
	if j.env, err = buildEnv(req.Drv, b.cfg.Store.Dir(), b.cfg.Cores, j.inside, j.top); err != nil {
		return nil, err
	}
	if err := b.run(ctx, j); err != nil {
		return nil, err
	}
	return b.register(req, outputs, closure)
}

// runSandboxed runs j's builder in the sandbox and moves the outputs it made
// into the store. A fixed-output derivation keeps the host's network: its
// output is checked against the hash it declared.
func (b *Builtin) runSandboxed(ctx context.Context, j *job) error {
	st := b.cfg.Store
	spec := &sandbox.Spec{
		Scratch: j.scratch, BuildDir: j.top, BuildDirInside: j.inside,
		StoreDir: string(st.Dir()), RealStore: st.RealDir(),
		Paths: b.paths, Network: j.req.Drv.IsFixed(),
		Builder: j.req.Drv.Builder, Args: j.req.Drv.Args, Env: j.env,
	}
	for _, p := range j.closure {
		spec.Inputs = append(spec.Inputs, p.Base())
	}
	for _, p := range j.outputs {
		spec.Outputs = append(spec.Outputs, p.Base())
	}
	lim := sandbox.Limits{Timeout: j.req.Timeout, MaxSilent: j.req.MaxSilent}
	if err := b.sandbox.Run(ctx, spec, lim, j.req.Log); err != nil {
		return buildError(err, j.req)
	}
	return moveOutputs(spec, j.outputs, st.RealDir())
}

// buildError turns the sandbox's error into Build's.
func buildError(err error, req Request) error {
	var exit *sandbox.ExitError
	switch {
	case errors.As(err, &exit):
		return fmt.Errorf("%w: %v", ErrBuilderFailed, exit)
	case errors.Is(err, sandbox.ErrExec):
		return fmt.Errorf("%w: %v", ErrBuilderFailed, err)
	case errors.Is(err, sandbox.ErrOutOfMemory):
		return fmt.Errorf("%w: killed at the build memory limit", ErrBuilderFailed)
	case errors.Is(err, sandbox.ErrTimeout):
		return fmt.Errorf("%w after %v", ErrTimedOut, req.Timeout)
	case errors.Is(err, sandbox.ErrSilent):
		return fmt.Errorf("%w: no output for %v", ErrSilent, req.MaxSilent)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return fmt.Errorf("%w: %v", ErrSandbox, err)
}

// moveOutputs renames the outputs the builder made into the store's real
// directory, where register finds them (and reports those it did not make).
func moveOutputs(spec *sandbox.Spec, outputs map[string]store.Path, realStore string) error {
	for _, p := range outputs {
		from := spec.OutputPath(p.Base())
		if _, err := os.Lstat(from); errors.Is(err, os.ErrNotExist) {
			continue
		}
		to := filepath.Join(realStore, p.Base())
		if err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE); err != nil {
			return fmt.Errorf("move output %s into the store: %w", p, err)
		}
	}
	return nil
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
