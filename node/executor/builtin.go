package executor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/tbfg/tbfg-node/node/executor/sandbox"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/derivation"
	"github.com/tbfg/tbfg-node/store/local"
	"golang.org/x/sys/unix"
)

// BuiltinConfig configures a Builtin executor.
type BuiltinConfig struct {
	// Store is the node's store: inputs come from it, outputs go into it.
	Store *local.Store
	// BuildDir is the directory under which each build gets a fresh
	// directory; it defaults to the system's temporary directory.
	BuildDir string
	// Cores is NIX_BUILD_CORES; it defaults to the number of CPUs.
	Cores int
	// SandboxPaths are host paths shown to builders, like Nix's
	// sandbox-paths: each key is the path inside the build namespace, its
	// value the host path, e.g. "/bin/sh": "/bin/busybox". They are
	// read-only.
	SandboxPaths map[string]string
	// BuildIDs are the host uids and gids builds run as, one per build, when
	// the node is root; zero means sandbox.DefaultIDs.
	BuildIDs sandbox.IDRange
	// BuildIDLockDir holds the lock files that keep two nodes of one machine
	// from giving an id to two builds at once; "" means the sandbox's
	// default.
	BuildIDLockDir string
	// Memory bounds each build's memory, in bytes, through a cgroup v2; 0
	// means no bound.
	Memory int64
	// MaxProcesses bounds each build's processes; 0 means
	// sandbox.DefaultMaxProcesses.
	MaxProcesses int
	// Logger receives one line per build; nil discards.
	Logger *slog.Logger
}

// Builtin is the executor that runs builders itself, without a daemon.
type Builtin struct {
	cfg     BuiltinConfig
	system  string
	hasher  *derivation.Hasher // checks output paths; remembers input hashes
	sandbox *sandbox.Sandbox
	paths   []sandbox.Mount // SandboxPaths, sorted
	// run runs a job's builder and leaves its outputs at their real paths
	// in the store: runSandboxed, or in tests the legacy sandbox it is
	// measured against.
	run func(ctx context.Context, j *job) error
}

// NewBuiltin returns a Builtin executor for cfg.
func NewBuiltin(cfg BuiltinConfig) (*Builtin, error) {
	if cfg.Store == nil {
		return nil, errors.New("builtin executor: no store")
	}
	if cfg.BuildDir == "" {
		cfg.BuildDir = os.TempDir()
	}
	if cfg.Cores <= 0 {
		cfg.Cores = runtime.NumCPU()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	for inside, host := range cfg.SandboxPaths {
		if !filepath.IsAbs(inside) || !filepath.IsAbs(host) {
			return nil, fmt.Errorf("builtin executor: sandbox path %s=%s: both must be absolute", inside, host)
		}
	}
	if err := os.MkdirAll(cfg.BuildDir, 0o700); err != nil {
		return nil, fmt.Errorf("builtin executor: %w", err)
	}
	if err := sameFileSystem(cfg.BuildDir, cfg.Store.RealDir()); err != nil {
		return nil, fmt.Errorf("builtin executor: %w", err)
	}
	sb, err := sandbox.New(sandbox.Config{IDs: cfg.BuildIDs, LockDir: cfg.BuildIDLockDir, Memory: cfg.Memory,
		MaxProcesses: cfg.MaxProcesses, Dir: cfg.BuildDir, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("builtin executor: %w", err)
	}
	loader := derivation.DirLoader{Root: cfg.Store.RealDir(), Dir: cfg.Store.Dir()}
	b := &Builtin{cfg: cfg, system: hostSystem(), hasher: derivation.NewHasher(cfg.Store.Dir(), loader), sandbox: sb}
	for _, inside := range slices.Sorted(maps.Keys(cfg.SandboxPaths)) {
		b.paths = append(b.paths, sandbox.Mount{Inside: inside, Host: cfg.SandboxPaths[inside]})
	}
	b.run = b.runSandboxed
	return b, nil
}

// sameFileSystem checks that the build directory is on the store's file
// system: outputs are made below the first and renamed into the second.
func sameFileSystem(buildDir, storeDir string) error {
	var a, b unix.Stat_t
	if err := unix.Stat(buildDir, &a); err != nil {
		return err
	}
	if err := unix.Stat(storeDir, &b); err != nil {
		return err
	}
	if a.Dev != b.Dev {
		return fmt.Errorf("build directory %s and store %s are on different file systems; outputs are moved from one to the other", buildDir, storeDir)
	}
	return nil
}

// hostSystem is this machine's system type in Guix and Nix notation.
func hostSystem() string {
	arch := map[string]string{"amd64": "x86_64", "386": "i686", "arm64": "aarch64", "riscv64": "riscv64", "ppc64le": "powerpc64le"}[runtime.GOARCH]
	return arch + "-" + runtime.GOOS
}

// Build runs req's builder and registers its outputs; see the package
// documentation.
func (b *Builtin) Build(ctx context.Context, req Request) (*Result, error) {
	if err := b.check(req); err != nil {
		return nil, fmt.Errorf("build %s: %w", req.DrvPath, err)
	}
	outputs := outputPaths(req.Drv)
	st := b.cfg.Store
	unlock, err := st.Lock(ctx, slices.Collect(maps.Values(outputs))...)
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", req.DrvPath, err)
	}
	defer unlock()
	if res, err := b.validOutputs(outputs); err != nil || res != nil {
		return res, err
	}
	closure, err := b.inputClosure(req.Drv)
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", req.DrvPath, err)
	}
	if err := b.checkOutputPaths(req); err != nil {
		return nil, fmt.Errorf("build %s: %w", req.DrvPath, err)
	}
	start := time.Now()
	res, err := b.buildLocked(ctx, req, outputs, closure)
	if err != nil {
		b.removeOutputs(outputs)
		b.cfg.Logger.Info("build failed", "drv", req.DrvPath, "err", err)
		return nil, fmt.Errorf("build %s: %w", req.DrvPath, err)
	}
	b.cfg.Logger.Info("build succeeded", "drv", req.DrvPath, "took", time.Since(start))
	return res, nil
}

// check refuses derivations this executor cannot build.
func (b *Builtin) check(req Request) error {
	d := req.Drv
	switch {
	case d == nil:
		return errors.New("no derivation given")
	case req.DrvPath.Dir() != b.cfg.Store.Dir():
		return fmt.Errorf("%w %q: not in store directory %s", store.ErrBadPath, req.DrvPath, b.cfg.Store.Dir())
	case d.System != b.system:
		return fmt.Errorf("%w: system %s, this node builds %s", ErrUnsupported, d.System, b.system)
	case strings.HasPrefix(d.Builder, "builtin:"):
		return fmt.Errorf("%w: built-in builder %s", ErrUnsupported, d.Builder)
	case d.Env["__json"] != "":
		return fmt.Errorf("%w: structured attributes", ErrUnsupported)
	}
	for id, o := range d.Outputs {
		if _, err := b.cfg.Store.RealPath(o.Path); err != nil {
			return fmt.Errorf("output %s: %w", id, err)
		}
	}
	return nil
}

// checkOutputPaths recomputes the derivation's output paths from its
// contents and its input derivations (in the store by now): building a
// derivation whose recorded paths are wrong would put contents at a path
// that does not name them.
func (b *Builtin) checkOutputPaths(req Request) error {
	name, err := derivation.NameFromPath(req.DrvPath)
	if err != nil {
		return err
	}
	if err := b.hasher.Check(req.Drv, name); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidDerivation, err)
	}
	p, err := derivation.StorePath(b.cfg.Store.Dir(), req.Drv, name)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidDerivation, err)
	}
	if p != req.DrvPath {
		return fmt.Errorf("%w: its contents belong at %s", ErrInvalidDerivation, p)
	}
	return nil
}

func outputPaths(d *derivation.Derivation) map[string]store.Path {
	out := make(map[string]store.Path, len(d.Outputs))
	for id, o := range d.Outputs {
		out[id] = o.Path
	}
	return out
}

// validOutputs returns the outputs' records if all are valid already.
func (b *Builtin) validOutputs(outputs map[string]store.Path) (*Result, error) {
	res := &Result{Outputs: make(map[string]*local.Info, len(outputs))}
	for id, p := range outputs {
		info, err := b.cfg.Store.Query(p)
		if errors.Is(err, local.ErrNotValid) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		res.Outputs[id] = info
	}
	return res, nil
}

// inputClosure returns the closure of the derivation's inputs: its sources
// and the outputs it uses of its input derivations, which must all be valid.
func (b *Builtin) inputClosure(d *derivation.Derivation) ([]store.Path, error) {
	inputs, missing, err := validInputs(b.cfg.Store, d)
	if err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrMissingInputs, strings.Join(missing, ", "))
	}
	return b.cfg.Store.Closure(inputs...)
}

// validInputs returns the derivation's inputs valid in st (its sources and
// the outputs it uses of its input derivations) and, sorted, those that are
// not (an input derivation missing from st counts as one).
func validInputs(st *local.Store, d *derivation.Derivation) (valid []store.Path, missing []string, err error) {
	inputs := slices.Clone(d.InputSrcs)
	loader := derivation.DirLoader{Root: st.RealDir(), Dir: st.Dir()}
	for drvPath, ids := range d.InputDrvs {
		if ok, err := st.IsValid(drvPath); err != nil || !ok {
			missing = append(missing, string(drvPath))
			continue
		}
		in, err := loader.Load(drvPath)
		if err != nil {
			return nil, nil, fmt.Errorf("input derivation: %w", err)
		}
		for _, id := range ids {
			o, ok := in.Outputs[id]
			if !ok {
				return nil, nil, fmt.Errorf("input derivation %s has no output %q", drvPath, id)
			}
			inputs = append(inputs, o.Path)
		}
	}
	for _, p := range inputs {
		if ok, err := st.IsValid(p); err == nil && ok {
			valid = append(valid, p)
		} else {
			missing = append(missing, string(p))
		}
	}
	slices.Sort(missing)
	return valid, missing, nil
}

// removeOutputs removes whatever a failed build left at its output paths.
func (b *Builtin) removeOutputs(outputs map[string]store.Path) {
	for _, p := range outputs {
		if err := b.cfg.Store.RemoveInvalid(p); err != nil {
			b.cfg.Logger.Warn("cannot remove output of failed build", "path", p, "err", err)
		}
	}
}
