package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/tbfg/tbfg-node/node/buildlog"
	"github.com/tbfg/tbfg-node/node/executor"
	"github.com/tbfg/tbfg-node/node/meshsource"
	"github.com/tbfg/tbfg-node/scheduler"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/local"
)

// Fetcher makes store paths and their closures valid in the local store,
// fetching them from the mesh. meshsource.Source implements it.
type Fetcher interface {
	Fetch(ctx context.Context, paths ...store.Path) error
}

// DefaultCommitTimeout bounds a final commit when CommitTimeout is 0.
const DefaultCommitTimeout = 10 * time.Second

// maxMessage bounds the failure message committed to the replicated state.
const maxMessage = 1024

// ErrConfig is wrapped by New for an unusable Config.
var ErrConfig = errors.New("invalid agent configuration")

// Config configures an Agent.
type Config struct {
	// Node is this node's ID, as allocations name it.
	Node string
	// FSM is this node's replica of the scheduler state.
	FSM *scheduler.FSM
	// Applier commits Started, Succeeded and Failed through the leader.
	Applier scheduler.Applier
	// Executor builds.
	Executor executor.Executor
	// Store is the node's local store: inputs are fetched into it and the
	// outputs the agent publishes are read from it.
	Store *local.Store
	// Fetcher fetches missing inputs and .drv files from the mesh.
	Fetcher Fetcher
	// Signer signs the outputs' narinfos with the node's keys.
	Signer *meshsource.Signer
	// OutputNAR, when set, opens the NAR of an output the executor left
	// outside Store (the nix executor keeps outputs in Nix's store); the
	// agent adds it to Store before publishing it. Nil means outputs are in
	// Store already (builtin).
	OutputNAR func(ctx context.Context, p store.Path) (io.ReadCloser, error)
	// MaxBuilds is the number of builds run at once; 0 means 1.
	MaxBuilds int
	// Load returns the machine's current load (e.g. the 1-minute load
	// average); with LoadLimit > 0, a build beyond the first starts only
	// while Load() < LoadLimit. Nil means no limit.
	Load      func() float64
	LoadLimit float64
	// TakeNext, when set, says whether the node takes new builds now; if
	// so, the agent commits a success with Succeeded.TakeNext, and the
	// node goes on with a dependent of the build in the same slot (the
	// state marks it running here). Nil never asks for it, which is right
	// while some member cannot read the command's format.
	TakeNext func() bool
	// Tick wakes the agent periodically to re-check the load and retry
	// commits that failed (e.g. a time.Ticker's C); nil means only state
	// changes and finished builds do.
	Tick <-chan time.Time
	// Timeout and MaxSilent bound each build; 0 means no bound.
	Timeout   time.Duration
	MaxSilent time.Duration
	// Logs receives one log per build, readable while the build runs;
	// nil discards logs.
	Logs *buildlog.Dir
	// Finished, when set, is told of every build this node ran to its end:
	// its system, its result ("succeeded", "failed" or "canceled" for a
	// build taken away) and how long it ran. The node's metrics count them.
	Finished func(system, result string, d time.Duration)
	// CommitTimeout bounds each final commit, also after the agent was told
	// to stop; 0 means DefaultCommitTimeout.
	CommitTimeout time.Duration
	// Now stamps commands; nil means time.Now.
	Now func() time.Time
	// Logger receives one line per build; nil discards.
	Logger *slog.Logger
}

// Agent runs the builds allocated to one node. Create it with New and run it
// with Run.
type Agent struct {
	cfg  Config
	wake chan struct{} // a job ended: a slot is free

	mu       sync.Mutex
	running  map[scheduler.BuildID]*job
	finished map[scheduler.BuildID]int // attempt last finished here, until the state forgets the build
	// unreported holds final commands (Succeeded, Failed) that could not be
	// committed: while the state still gives that attempt to this node, the
	// next wake-up commits them again instead of rebuilding. Without it the
	// build would stay running on this node in the state for good.
	unreported map[scheduler.BuildID]outcome

	timelines timelines
}

// outcome is the final command of one attempt of a build.
type outcome struct {
	attempt int
	cmd     scheduler.Command
}

// job is one running build.
type job struct {
	attempt   int
	cancel    context.CancelFunc
	takenAway bool // the state no longer gives it to this node: commit nothing
}

// New checks cfg and returns an Agent.
func New(cfg Config) (*Agent, error) {
	if cfg.Node == "" || cfg.FSM == nil || cfg.Applier == nil || cfg.Executor == nil ||
		cfg.Store == nil || cfg.Fetcher == nil || cfg.Signer == nil {
		return nil, fmt.Errorf("%w: Node, FSM, Applier, Executor, Store, Fetcher and Signer are required", ErrConfig)
	}
	if cfg.MaxBuilds < 0 || cfg.Timeout < 0 || cfg.MaxSilent < 0 || cfg.CommitTimeout < 0 {
		return nil, fmt.Errorf("%w: negative MaxBuilds or duration", ErrConfig)
	}
	if cfg.MaxBuilds == 0 {
		cfg.MaxBuilds = 1
	}
	if cfg.CommitTimeout == 0 {
		cfg.CommitTimeout = DefaultCommitTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Agent{cfg: cfg, wake: make(chan struct{}, 1),
		running: map[scheduler.BuildID]*job{}, finished: map[scheduler.BuildID]int{},
		unreported: map[scheduler.BuildID]outcome{}}, nil
}

// Run reports orphaned builds, then runs allocations until ctx ends. It
// returns ctx's error after every build it started has stopped and made its
// final commit (each bounded by CommitTimeout). Call it once.
func (a *Agent) Run(ctx context.Context) error {
	sub := a.cfg.FSM.WatchNode(a.cfg.Node)
	defer sub.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	a.requeueOrphans(ctx)
	for {
		a.schedule(ctx, &wg)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-sub.C:
		case <-a.wake:
		case <-a.cfg.Tick:
		}
	}
}

// Running returns the ids of the builds running here, for status pages.
func (a *Agent) Running() []scheduler.BuildID {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]scheduler.BuildID, 0, len(a.running))
	for id := range a.running {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// requeueOrphans reports the builds the state shows running here as failed:
// nothing runs here before this point, so they belong to an earlier run. A
// report that cannot be committed is retried by schedule, never by running
// the build.
func (a *Agent) requeueOrphans(ctx context.Context) {
	for _, b := range a.nodeBuilds() {
		if b.State != scheduler.BuildRunning {
			continue
		}
		a.cfg.Logger.Info("re-queueing orphaned build", "build", b.ID, "drv", b.Drv)
		if a.commitFailed(ctx, b, scheduler.ReasonInfrastructure, "node restarted during the build") {
			a.mu.Lock()
			a.finished[b.ID] = b.Attempt
			a.mu.Unlock()
		}
	}
}

func (a *Agent) nodeBuilds() []scheduler.BuildInfo {
	var builds []scheduler.BuildInfo
	a.cfg.FSM.Read(func(s *scheduler.State) { builds = s.NodeBuilds(a.cfg.Node) })
	return builds
}

// schedule stops jobs the state took away and starts allocations while
// slots are free and the load allows.
func (a *Agent) schedule(ctx context.Context, wg *sync.WaitGroup) {
	builds := a.nodeBuilds()
	mine := make(map[scheduler.BuildID]int, len(builds))
	for _, b := range builds {
		mine[b.ID] = b.Attempt
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for id, j := range a.running {
		if att, ok := mine[id]; !ok || att != j.attempt {
			j.takenAway = true
			j.cancel()
		}
	}
	for id := range a.finished {
		if _, ok := mine[id]; !ok {
			delete(a.finished, id) // the state moved on; a new attempt may come
		}
	}
	for id, o := range a.unreported {
		if att, ok := mine[id]; !ok || att != o.attempt {
			delete(a.unreported, id) // the state moved on without this outcome
		}
	}
	for _, b := range builds {
		if att, ok := a.finished[b.ID]; ok && att == b.Attempt || a.running[b.ID] != nil {
			continue
		}
		if len(a.running) >= a.cfg.MaxBuilds || len(a.running) > 0 && a.overloaded() {
			return
		}
		a.start(ctx, wg, b)
	}
}

func (a *Agent) overloaded() bool {
	return a.cfg.Load != nil && a.cfg.LoadLimit > 0 && a.cfg.Load() >= a.cfg.LoadLimit
}

// start runs b in a goroutine owned by wg. a.mu is held.
func (a *Agent) start(ctx context.Context, wg *sync.WaitGroup, b scheduler.BuildInfo) {
	jctx, cancel := context.WithCancel(ctx)
	j := &job{attempt: b.Attempt, cancel: cancel}
	a.running[b.ID] = j
	a.mark(b, seen)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer cancel()
		finished := a.run(jctx, j, b)
		a.mu.Lock()
		delete(a.running, b.ID)
		if finished {
			a.finished[b.ID] = b.Attempt
		}
		a.mu.Unlock()
		if !finished {
			return // retried on the next change or tick, not in a tight loop
		}
		select {
		case a.wake <- struct{}{}:
		default:
		}
	}()
}
