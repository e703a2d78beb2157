package replicate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
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
	// DefaultTakeover is how long an item stays under-replicated before
	// the next-ranked member takes a copy too. It is longer than the first
	// few back-offs of a failing target (5, 10, 20, 40 s) and than a
	// typical copy, so a working target is rarely doubled.
	DefaultTakeover = 2 * time.Minute
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
	// Takeover is how long an item may stay under-replicated, as this node
	// sees it, before one more member in the ranking takes a copy: after
	// k whole periods the first need+k candidates are chosen instead of
	// the first need, so a target that is alive but cannot copy (full
	// disk, unreachable holders) is stood in for without any agreement.
	// The count starts again when the item's number of holders changes.
	// Takeover is only noticed when something wakes the replicator, so it
	// wants a Tick. 0 means DefaultTakeover.
	Takeover time.Duration
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
	ages ages            // how long paths have been under-replicated
	// backlog is the number of items with fewer than Copies holders at
	// the last look, for Backlog.
	backlog atomic.Int64
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
	if cfg.Copies < 0 || cfg.Batch < 0 || cfg.CommitTimeout < 0 || cfg.MinInterval < 0 || cfg.Takeover < 0 {
		return nil, fmt.Errorf("%w: negative Copies, Batch, CommitTimeout, MinInterval or Takeover", ErrConfig)
	}
	if cfg.Takeover == 0 {
		cfg.Takeover = DefaultTakeover
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

// Backlog is how many store items had fewer than Copies holders (and a
// signed narinfo, so that they can be copied) when the replicator last
// looked at the state; 0 before it looked, and when Copies is 1.
func (r *Replicator) Backlog() int { return int(r.backlog.Load()) }

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
// and is not holding back: first those it is a target for, then those it
// stands in for because they stayed under-replicated for a Takeover period
// or more, so that a node's own share goes first. It updates the ages of
// all the under-replicated items it could copy, chosen or not.
func (r *Replicator) pick(now time.Time) []scheduler.ItemInfo {
	var own, over []scheduler.ItemInfo
	backlog := 0
	defer func() { r.backlog.Store(int64(backlog)) }()
	r.ages.begin()
	r.cfg.FSM.Read(func(s *scheduler.State) {
		rk := newRanking(activeMembers(s))
		if _, ok := rk.hashes[r.cfg.Node]; !ok {
			return // not an active member: no candidate for any copy
		}
		// keep collects the batch itself and always says no: with a limit,
		// UnderReplicated would stop at a full batch and the items after
		// it would keep no age.
		s.UnderReplicated(r.cfg.Copies, 0, func(it scheduler.ItemInfo) bool {
			if it.Narinfo != "" {
				backlog++
			}
			if it.Narinfo == "" || slices.Contains(it.Holders, r.cfg.Node) {
				return false // it cannot be fetched (no signed narinfo), or is here
			}
			age := r.ages.see(it.Path, len(it.Holders), now)
			if len(own) == r.cfg.Batch || !r.ready(it.Path, now) {
				return false
			}
			switch r.choose(rk, it, age) {
			case target:
				own = append(own, it)
			case stand:
				if len(over) < r.cfg.Batch {
					over = append(over, it)
				}
			}
			return false
		})
	})
	r.ages.end()
	return append(own, over[:min(len(over), r.cfg.Batch-len(own))]...)
}

// choice is what a node makes of one under-replicated item.
type choice int

const (
	skip   choice = iota // other nodes copy it
	target               // this node is one of its Targets
	stand                // this node stands in for a target that is late
)

// choose says whether this node takes a copy of it, under-replicated for
// age: it does if it is among the first need candidates in the ranking, or
// among the first need+extra once age reached extra Takeover periods.
func (r *Replicator) choose(rk ranking, it scheduler.ItemInfo, age time.Duration) choice {
	need := r.cfg.Copies - len(it.Holders)
	// Capped both ways: a clock that stepped back must not push a target
	// out of its own choice, nor a long age overflow need+extra.
	extra := int(max(0, min(age/r.cfg.Takeover, time.Duration(len(rk.members)))))
	switch pos := rk.position(r.cfg.Node, it.Path, it.Holders, need+extra); {
	case pos < 0 || pos >= need+extra:
		return skip
	case pos < need:
		return target
	}
	return stand
}

// ready reports whether path is not held back at now.
func (r *Replicator) ready(path string, now time.Time) bool {
	h, ok := r.wait[path]
	return !ok || !now.Before(h.until)
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
