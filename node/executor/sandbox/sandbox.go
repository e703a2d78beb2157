package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"syscall"
	"time"
)

// DefaultMaxProcesses bounds the processes (and threads) of one build unless
// configured otherwise: far more than a parallel make of a big package
// runs, far fewer than a fork bomb would make.
const DefaultMaxProcesses = 16384

// Config is how builds are isolated on this machine.
type Config struct {
	// IDs are the host uids and gids builds run as, one per build, when the
	// node is root; zero means DefaultIDs. An unprivileged node can only map
	// its own uid, so its builds all run as that uid on the host, each still
	// in namespaces of its own.
	IDs IDRange
	// LockDir holds a lock file per id, so that two nodes on one machine
	// never give the same id to two builds; default /run/tbfg/build-ids for
	// root.
	LockDir string
	// Memory bounds the memory of each build, in bytes, through its cgroup;
	// zero means no bound. It needs a writable cgroup v2 directory with the
	// memory controller, or New fails.
	Memory int64
	// MaxProcesses bounds the processes of each build; zero means
	// DefaultMaxProcesses.
	MaxProcesses int
	// Dir is where New makes the scratch directory of its probe; default the
	// system's temporary directory.
	Dir string
	// Logger receives what New found; nil discards.
	Logger *slog.Logger
}

// Limits bound one build's run.
type Limits struct {
	// Timeout bounds the whole run; 0 means no bound.
	Timeout time.Duration
	// MaxSilent bounds the time without output; 0 means no bound.
	MaxSilent time.Duration
}

// Errors returned by Run. The builder's own failures are *ExitError.
var (
	// ErrTimeout means the build ran longer than Limits.Timeout.
	ErrTimeout = errors.New("timeout")
	// ErrSilent means the build wrote nothing for Limits.MaxSilent.
	ErrSilent = errors.New("silent")
	// ErrOutOfMemory means the build reached the memory limit and was killed.
	ErrOutOfMemory = errors.New("out of memory")
	// ErrExec means the builder could not be executed (missing, not
	// executable): a fault of the build, not of the sandbox.
	ErrExec = errors.New("cannot execute builder")
	// ErrSetup means the sandbox could not be set up or run.
	ErrSetup = errors.New("sandbox")
	// ErrNoMemoryLimit is returned by New when a memory limit is asked for
	// but this machine's cgroups cannot enforce one.
	ErrNoMemoryLimit = errors.New("memory limit not available")
)

// ExitError is a builder that ended with a non-zero status or a signal.
type ExitError struct {
	Code   int // the exit status, or -1 when killed by Signal
	Signal int
}

func (e *ExitError) Error() string {
	if e.Code < 0 {
		return fmt.Sprintf("killed by signal %v", syscall.Signal(e.Signal))
	}
	return fmt.Sprintf("exit status %d", e.Code)
}

// Sandbox runs builds isolated as its Config says. It is safe for concurrent
// use.
type Sandbox struct {
	cfg     Config
	log     *slog.Logger
	ids     *idPool  // nil for an unprivileged node
	cgroups *cgroups // nil without cgroup v2: the PID namespace bounds builds
	// uidMap and gidMap are the helper's mappings for a root node.
	uidMap, gidMap []syscall.SysProcIDMap
}

// New checks that this machine can isolate builds as cfg says, by running a
// probe build, and returns the sandbox. Its error says which step the
// kernel refused; there is no fallback to weaker isolation.
func New(cfg Config) (*Sandbox, error) {
	if cfg.IDs.Count == 0 {
		cfg.IDs = DefaultIDs
	}
	if cfg.MaxProcesses <= 0 {
		cfg.MaxProcesses = DefaultMaxProcesses
	}
	if cfg.Dir == "" {
		cfg.Dir = os.TempDir()
	}
	if cfg.LockDir == "" {
		cfg.LockDir = "/run/tbfg/build-ids"
	}
	s := &Sandbox{cfg: cfg, log: cfg.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if err := s.init(); err != nil {
		return nil, fmt.Errorf("build sandbox: %w", err)
	}
	return s, nil
}

func (s *Sandbox) init() error {
	if os.Geteuid() == 0 {
		if err := s.initIDs(); err != nil {
			return err
		}
	}
	cg, none, err := newCgroups(s.cfg.Memory)
	if err != nil {
		return err
	}
	s.cgroups = cg
	if err := s.probe(s.cfg.Dir); err != nil {
		return fmt.Errorf("cannot isolate builds on this machine: probe build: %w", err)
	}
	s.log.Info("build sandbox ready", "ids", s.idsText(), "cgroup", s.cgroupText(none), "memory", s.cfg.Memory,
		"max_processes", s.cfg.MaxProcesses)
	return nil
}

// initIDs prepares a root node's pool of build ids, which must be ids the
// node's user namespace maps (all of them, outside containers).
func (s *Sandbox) initIDs() error {
	var err error
	if s.uidMap, err = identityMap("/proc/self/uid_map"); err != nil {
		return err
	}
	if s.gidMap, err = identityMap("/proc/self/gid_map"); err != nil {
		return err
	}
	if !covers(s.uidMap, s.cfg.IDs) || !covers(s.gidMap, s.cfg.IDs) {
		return fmt.Errorf("build ids %s are not all mapped in the node's user namespace (see /proc/self/uid_map): choose build ids among the mapped ones", s.cfg.IDs)
	}
	pool, err := newIDPool(s.cfg.IDs, s.cfg.LockDir)
	if err != nil {
		return err
	}
	s.ids = pool
	return nil
}

func (s *Sandbox) idsText() string {
	if s.ids == nil {
		return fmt.Sprintf("the node's own uid %d (unprivileged node)", os.Geteuid())
	}
	return s.cfg.IDs.String()
}

func (s *Sandbox) cgroupText(none string) string {
	if s.cgroups == nil {
		return "none (" + none + "); the PID namespace bounds each build"
	}
	return s.cgroups.dir
}

// Run runs spec's builder in the sandbox, with its output and error going to
// log, and returns once every process of the build is gone. On success
// (and on the builder's failure) the outputs it made are at
// spec.OutputPath, owned by the node.
func (s *Sandbox) Run(ctx context.Context, spec *Spec, lim Limits, log io.Writer) error {
	host, err := s.acquire(ctx)
	if err != nil {
		return err
	}
	defer host.release()
	inside := host
	setGroups := true
	if s.ids == nil { // the helper's namespace maps only the node's ids, as 0
		inside, setGroups = lease{}, false
	}
	h, err := helperSpecFor(spec, inside, uint64(s.cfg.MaxProcesses), setGroups)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSetup, err)
	}
	if err := prepareScratch(h, host); err != nil {
		return fmt.Errorf("%w: prepare build directory: %v", ErrSetup, err)
	}
	runErr := s.runHelper(ctx, h, lim, log)
	if err := reclaim(spec); err != nil && runErr == nil {
		runErr = fmt.Errorf("%w: %v", ErrSetup, err)
	}
	return runErr
}

// acquire returns the host ids of one build: from the pool for root, the
// node's own otherwise.
func (s *Sandbox) acquire(ctx context.Context) (lease, error) {
	if s.ids == nil {
		return lease{uid: uint32(os.Geteuid()), gid: uint32(os.Getegid()), release: func() {}}, nil
	}
	l, err := s.ids.acquire(ctx)
	if err != nil && ctx.Err() == nil {
		return lease{}, fmt.Errorf("%w: %v", ErrSetup, err)
	}
	return l, err
}
