package replicate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/tbfg/tbfg-node/scheduler"
	"github.com/tbfg/tbfg-node/store"
)

// Defaults of Config.
const (
	// DefaultCopies is how many active members should hold each item.
	DefaultCopies = 2
	// DefaultBatch bounds the items fetched between two looks at the state.
	DefaultBatch = 32
	// DefaultCommitTimeout bounds one HolderAdded commit.
	DefaultCommitTimeout = 10 * time.Second
	// DefaultMinInterval is the shortest time between two looks at the
	// state that a state change can cause.
	DefaultMinInterval = time.Second
)

// Back-off of a path after a failed fetch or commit, and the pause after a
// commit while the local replica catches up with it.
const (
	// BackoffBase is the wait after a path's first failure; it doubles per
	// failure up to BackoffMax.
	BackoffBase = 5 * time.Second
	// BackoffMax caps the wait between two attempts at one path.
	BackoffMax = 5 * time.Minute
	// settle is how long a path just committed is not taken again: the
	// commit is applied on the leader first, and until this node's replica
	// applies it too, the path still looks under-replicated here. Without
	// it the same HolderAdded would be committed again at once.
	settle = 30 * time.Second
)

// ErrConfig is wrapped by New for an unusable Config.
var ErrConfig = errors.New("invalid replicator configuration")

// Fetcher makes store paths and their closures valid in the local store,
// fetching them from the mesh and verifying them. meshsource.Source
// implements it.
type Fetcher interface {
	Fetch(ctx context.Context, paths ...store.Path) error
}

// Config configures a Replicator.
type Config struct {
	// Node is this node's ID, as the state names members.
	Node string
	// FSM is this node's replica of the scheduler state.
	FSM *scheduler.FSM
	// Applier commits HolderAdded through the leader.
	Applier scheduler.Applier
	// Fetcher copies items into the local store.
	Fetcher Fetcher
	// Copies is how many active members should hold each item; 0 means
	// DefaultCopies, 1 turns replication off.
	Copies int
	// Batch bounds the items taken per look at the state; 0 means
	// DefaultBatch.
	Batch int
	// Tick wakes the replicator periodically, e.g. to retry paths whose
	// back-off ended (a time.Ticker's C); nil means only state changes do.
	Tick <-chan time.Time
	// CommitTimeout bounds each commit; 0 means DefaultCommitTimeout.
	CommitTimeout time.Duration
	// MinInterval is the shortest time between two looks at the state
	// after a state change: a look is one pass over every store path, and
	// while builds run the state changes many times a second. 0 means
	// DefaultMinInterval.
	MinInterval time.Duration
	// Now is the clock of back-offs and command times; nil means time.Now.
	Now func() time.Time
	// Logger receives one line per item recorded and per failure; nil
	// discards.
	Logger *slog.Logger
}

// Replicator copies the items this node is chosen for. Create it with New
// and run it with Run.
type Replicator struct {
	cfg  Config
	wait map[string]hold // paths not to take before a time; Run's goroutine only
}

// hold keeps a path aside until a time: after failures (with their count,
// for the back-off) or after a commit (failures 0).
type hold struct {
	until    time.Time
	failures int
}

// New checks cfg and returns a Replicator.
func New(cfg Config) (*Replicator, error) {
	if cfg.Node == "" || cfg.FSM == nil || cfg.Applier == nil || cfg.Fetcher == nil {
		return nil, fmt.Errorf("%w: Node, FSM, Applier and Fetcher are required", ErrConfig)
	}
	if cfg.Copies < 0 || cfg.Batch < 0 || cfg.CommitTimeout < 0 || cfg.MinInterval < 0 {
		return nil, fmt.Errorf("%w: negative Copies, Batch, CommitTimeout or MinInterval", ErrConfig)
	}
	if cfg.MinInterval == 0 {
		cfg.MinInterval = DefaultMinInterval
	}
	if cfg.Copies == 0 {
		cfg.Copies = DefaultCopies
	}
	if cfg.Batch == 0 {
		cfg.Batch = DefaultBatch
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
	return &Replicator{cfg: cfg, wait: map[string]hold{}}, nil
}

// Run copies items until ctx ends, then returns ctx's error. It does all its
// work in the calling goroutine, one item at a time, so nothing runs on
// after it returns. Call it once.
func (r *Replicator) Run(ctx context.Context) error {
	if r.cfg.Copies <= 1 {
		<-ctx.Done()
		return ctx.Err()
	}
	sub := r.cfg.FSM.Changes()
	defer sub.Close()
	for {
		// A full batch that went well may leave more to do: look again at
		// once rather than waiting for the next change.
		last := r.cfg.Now()
		for more := true; more && ctx.Err() == nil; {
			more = r.round(ctx)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-sub.C:
			// Changes that come in a burst wait together.
			if err := r.pause(ctx, r.cfg.MinInterval-r.cfg.Now().Sub(last)); err != nil {
				return err
			}
		case <-r.cfg.Tick:
		}
	}
}

// pause waits d, or until ctx ends, and returns ctx's error if it ended.
func (r *Replicator) pause(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// round copies one batch of the items this node is chosen for and commits
// them. It reports whether the batch was full and every item in it was
// copied and committed.
func (r *Replicator) round(ctx context.Context) bool {
	now := r.cfg.Now()
	r.forget(now)
	items := r.pick(now)
	if len(items) == 0 {
		return false
	}
	var fetched []scheduler.ItemInfo
	for _, it := range items {
		if err := r.cfg.Fetcher.Fetch(ctx, store.Path(it.Path)); err != nil {
			if ctx.Err() != nil {
				return false
			}
			r.failed(it.Path, fmt.Errorf("fetch: %w", err))
			continue
		}
		fetched = append(fetched, it)
	}
	if len(fetched) == 0 {
		return false
	}
	if !r.commit(ctx, fetched) {
		return false
	}
	return len(fetched) == r.cfg.Batch
}

// pick returns up to Batch under-replicated items this node is chosen for
// and is not holding back.
func (r *Replicator) pick(now time.Time) []scheduler.ItemInfo {
	var items []scheduler.ItemInfo
	r.cfg.FSM.Read(func(s *scheduler.State) {
		rk := newRanking(activeMembers(s))
		items = s.UnderReplicated(r.cfg.Copies, r.cfg.Batch, func(it scheduler.ItemInfo) bool {
			if it.Narinfo == "" || !rk.chosen(r.cfg.Node, it.Path, it.Holders, r.cfg.Copies) {
				return false // an item without a signed narinfo cannot be fetched
			}
			h, ok := r.wait[it.Path]
			return !ok || !now.Before(h.until)
		})
	})
	return items
}

// activeMembers lists the IDs of the members that can take copies.
func activeMembers(s *scheduler.State) []string {
	var out []string
	for _, m := range s.Members() {
		if m.Status == "active" {
			out = append(out, m.ID)
		}
	}
	return out
}

// commit records this node as a holder of the fetched items and of their
// direct references, which the fetch made valid here too. It reports
// whether the commit went through.
func (r *Replicator) commit(ctx context.Context, fetched []scheduler.ItemInfo) bool {
	items := r.withReferences(fetched)
	cmd := scheduler.Encode(&scheduler.HolderAdded{Time: r.cfg.Now(), Node: r.cfg.Node, Items: items})
	cctx, cancel := context.WithTimeout(ctx, r.cfg.CommitTimeout)
	defer cancel()
	if _, err := r.cfg.Applier.Apply(cctx, cmd); err != nil {
		if ctx.Err() == nil {
			for _, it := range fetched {
				r.failed(it.Path, fmt.Errorf("commit: %w", err))
			}
		}
		return false
	}
	until := r.cfg.Now().Add(settle)
	for _, it := range fetched {
		r.wait[it.Path] = hold{until: until}
	}
	for _, it := range items {
		r.cfg.Logger.Info("holding a copy", "path", it.Path)
	}
	return true
}

// withReferences returns the records of the fetched items followed by those
// of their references that this node is not yet recorded as holding, each
// once.
func (r *Replicator) withReferences(fetched []scheduler.ItemInfo) []scheduler.Item {
	seen := make(map[string]bool, len(fetched))
	items := make([]scheduler.Item, 0, len(fetched))
	for _, it := range fetched {
		seen[it.Path] = true
		items = append(items, it.Item)
	}
	r.cfg.FSM.Read(func(s *scheduler.State) {
		for _, it := range fetched {
			for _, ref := range it.References {
				if seen[ref] {
					continue
				}
				seen[ref] = true
				if ri, ok := s.Item(ref); ok && ri.Narinfo != "" && !slices.Contains(ri.Holders, r.cfg.Node) {
					items = append(items, ri.Item)
				}
			}
		}
	})
	return items
}

// failed holds path back for a back-off that doubles with each failure.
func (r *Replicator) failed(path string, err error) {
	h := r.wait[path]
	h.failures++
	wait := BackoffBase << min(h.failures-1, 16)
	if wait > BackoffMax || wait <= 0 {
		wait = BackoffMax
	}
	h.until = r.cfg.Now().Add(wait)
	r.wait[path] = h
	r.cfg.Logger.Warn("cannot hold a copy", "path", path, "failures", h.failures, "retry_in", wait, "err", err)
}

// forget drops holds that ended long enough ago that they no longer matter:
// a settled commit once its pause is over, a failure once a whole BackoffMax
// passed after its retry time (a path failing again much later starts its
// back-off anew).
func (r *Replicator) forget(now time.Time) {
	for p, h := range r.wait {
		if h.failures == 0 && !now.Before(h.until) || now.Sub(h.until) > BackoffMax {
			delete(r.wait, p)
		}
	}
}
