package gc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/tbfg/tbfg-node/scheduler"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/local"
)

// Defaults of Config.
const (
	// DefaultInterval is how often the collector checks the store's bounds.
	DefaultInterval = time.Minute
	// DefaultGrace is how long an item stays after its last use whatever
	// the bounds: long enough for a fetched copy or an imported .drv to be
	// recorded in the replicated state.
	DefaultGrace = 2 * time.Minute
	// DefaultCommitTimeout bounds one HolderRemoved commit.
	DefaultCommitTimeout = 10 * time.Second
)

// ErrConfig is wrapped by New for an unusable Config.
var ErrConfig = errors.New("invalid collector configuration")

// Store is the local store the collector empties. *local.Store implements
// it.
type Store interface {
	Usage() ([]local.Usage, error)
	Remove(ctx context.Context, paths ...store.Path) (int64, error)
}

// Config configures a Collector.
type Config struct {
	// Node is this node's ID, as the state names members.
	Node string
	// FSM is this node's replica of the scheduler state.
	FSM *scheduler.FSM
	// Applier commits HolderRemoved through the leader.
	Applier scheduler.Applier
	// Store is the local store.
	Store Store
	// Replicas is how many active members must keep holding each item; 0
	// means 1 (the collector never removes the last copy).
	Replicas int
	// StoreMax bounds the store's size in bytes (the NAR sizes of its
	// items); 0 means no bound.
	StoreMax int64
	// MinFree is the free space, in bytes, to keep on the store's disk; 0
	// means no bound.
	MinFree int64
	// DiskFree reports the free space on the store's disk; nil means
	// MinFree is not checked.
	DiskFree func() (int64, error)
	// Tick wakes the collector to check the bounds (a time.Ticker's C);
	// nil means it only collects when asked (Collect).
	Tick <-chan time.Time
	// Grace is how long after its last use an item is kept whatever the
	// bounds; 0 means DefaultGrace.
	Grace time.Duration
	// CommitTimeout bounds each commit; 0 means DefaultCommitTimeout.
	CommitTimeout time.Duration
	// Removed is told of every item removed (e.g. to count it in the
	// metrics); nil means nobody is.
	Removed func(Removal)
	// Now is the clock of last uses and command times; nil means time.Now.
	Now func() time.Time
	// Logger receives a line per item removed and per failure; nil
	// discards.
	Logger *slog.Logger
}

// Request is one collection.
type Request struct {
	// DryRun chooses without removing anything.
	DryRun bool
	// Free is how many bytes to free at least, beyond what the bounds ask.
	Free int64
}

// Report is what one collection did or, dry, would do.
type Report struct {
	// Want is how many bytes the bounds and the request asked to free.
	Want int64
	// StoreSize is the store's size before the collection.
	StoreSize int64
	// Removed are the items removed (or to remove), in order.
	Removed []Removal
	// Freed is the sum of their sizes.
	Freed int64
}

// Collector keeps the local store within its bounds. Create it with New.
type Collector struct {
	cfg Config
	mu  sync.Mutex // one collection at a time
}

// New checks cfg and returns a Collector.
func New(cfg Config) (*Collector, error) {
	if cfg.Node == "" || cfg.FSM == nil || cfg.Applier == nil || cfg.Store == nil {
		return nil, fmt.Errorf("%w: Node, FSM, Applier and Store are required", ErrConfig)
	}
	if cfg.Replicas < 0 || cfg.StoreMax < 0 || cfg.MinFree < 0 || cfg.Grace < 0 || cfg.CommitTimeout < 0 {
		return nil, fmt.Errorf("%w: negative Replicas, StoreMax, MinFree, Grace or CommitTimeout", ErrConfig)
	}
	cfg.Replicas = max(cfg.Replicas, 1)
	if cfg.Grace == 0 {
		cfg.Grace = DefaultGrace
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
	return &Collector{cfg: cfg}, nil
}

// Run collects on every tick until ctx ends, then returns ctx's error.
func (c *Collector) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.cfg.Tick:
			rep, err := c.Collect(ctx, Request{})
			if err != nil && ctx.Err() == nil {
				c.cfg.Logger.Warn("store collection failed", "err", err)
			} else if rep.Want > rep.Freed {
				c.cfg.Logger.Warn("store over its bounds, nothing more may go",
					"want", rep.Want, "freed", rep.Freed, "size", rep.StoreSize)
			}
		}
	}
}

// Collect frees what the bounds and req ask for, or with req.DryRun says
// what it would remove. Items this node is recorded as holding are first
// committed as no longer held (HolderRemoved), so that no member routes a
// fetch to a copy about to go, and removed from the store only after the
// commit went through.
func (c *Collector) Collect(ctx context.Context, req Request) (Report, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	usage, err := c.cfg.Store.Usage()
	if err != nil {
		return Report{}, fmt.Errorf("store usage: %w", err)
	}
	rep := Report{}
	for _, u := range usage {
		rep.StoreSize += u.Size
	}
	if rep.Want, err = c.want(rep.StoreSize, req.Free); err != nil || rep.Want <= 0 {
		return rep, err
	}
	rep.Removed = Choose(c.candidates(usage), c.limits(rep.Want))
	if req.DryRun {
		rep.Freed = sumSizes(rep.Removed)
		return rep, nil
	}
	removed, err := c.remove(ctx, rep.Removed)
	rep.Removed, rep.Freed = removed, sumSizes(removed)
	return rep, err
}

// want is how many bytes to free: the most that the store bound, the disk
// bound or the request asks for.
func (c *Collector) want(size, free int64) (int64, error) {
	want := free
	if c.cfg.StoreMax > 0 {
		want = max(want, size-c.cfg.StoreMax)
	}
	if c.cfg.MinFree > 0 && c.cfg.DiskFree != nil {
		avail, err := c.cfg.DiskFree()
		if err != nil {
			return 0, fmt.Errorf("free space: %w", err)
		}
		want = max(want, c.cfg.MinFree-avail)
	}
	return want, nil
}

func (c *Collector) limits(want int64) Limits {
	return Limits{Node: c.cfg.Node, Replicas: c.cfg.Replicas, Free: want,
		UsedBefore: c.cfg.Now().Add(-c.cfg.Grace)}
}

// candidates joins the store's items with what the state says of them.
func (c *Collector) candidates(usage []local.Usage) []Candidate {
	paths := make([]string, len(usage))
	for i, u := range usage {
		paths[i] = string(u.Path)
	}
	var hs []scheduler.Holding
	c.cfg.FSM.Read(func(s *scheduler.State) { hs = s.Holdings(c.cfg.Node, paths) })
	out := make([]Candidate, len(usage))
	for i, u := range usage {
		refs := make([]string, len(u.References))
		for j, r := range u.References {
			refs[j] = string(r)
		}
		out[i] = Candidate{Path: paths[i], Size: u.Size, References: refs, LastUsed: u.LastUsed,
			Holders: hs[i].Holders, Needed: hs[i].Needed, Built: hs[i].Built}
	}
	return out
}

func sumSizes(rs []Removal) int64 {
	var n int64
	for _, r := range rs {
		n += r.Size
	}
	return n
}
