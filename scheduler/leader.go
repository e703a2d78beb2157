package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Applier commits an encoded command through the Raft leader and returns the
// FSM's response. mesh.Mesh satisfies it; tests use a raft.Raft adapter.
type Applier interface {
	Apply(ctx context.Context, cmd []byte) ([]byte, error)
}

// LeaderConfig configures the allocation loop.
type LeaderConfig struct {
	// FSM is this node's state machine, read for planning.
	FSM *FSM
	// Applier commits the Allocate commands.
	Applier Applier
	// Nodes returns the current views of the nodes (from gossip).
	Nodes func() []NodeView
	// Now is the clock stamped into commands and used for back-off.
	Now func() time.Time
	// Tick wakes the loop periodically, e.g. a time.Ticker's C: views change
	// without any state change (load drops, a back-off ends).
	Tick <-chan time.Time
	// Options tunes each round.
	Options PlanOptions
	// Logger receives the loop's logs.
	Logger *slog.Logger
}

// Leader runs allocation rounds while this node leads: it plans from a
// read-only view of the state and proposes the plan as one Allocate command,
// which Apply verifies.
type Leader struct {
	cfg LeaderConfig
}

// NewLeader checks cfg and returns an allocation loop.
func NewLeader(cfg LeaderConfig) (*Leader, error) {
	if cfg.FSM == nil || cfg.Applier == nil || cfg.Nodes == nil || cfg.Now == nil {
		return nil, fmt.Errorf("%w: leader needs FSM, Applier, Nodes and Now", ErrInvalid)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Leader{cfg: cfg}, nil
}

// Run allocates after every state change and every tick until ctx ends (the
// caller cancels it when leadership is lost). It returns ctx's error.
func (l *Leader) Run(ctx context.Context) error {
	changes := l.cfg.FSM.Changes()
	defer changes.Close()
	for {
		if _, err := l.Round(ctx); err != nil && ctx.Err() == nil {
			// A rejected plan changed nothing; the next change or tick replans.
			l.cfg.Logger.Warn("allocation round failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changes.C:
		case <-l.cfg.Tick:
		}
	}
}

// Round plans once and, if the plan is not empty, commits it. It returns the
// number of builds allocated.
func (l *Leader) Round(ctx context.Context) (int, error) {
	now := l.cfg.Now()
	views := l.cfg.Nodes()
	var plan []Allocation
	l.cfg.FSM.Read(func(s *State) { plan = s.Plan(views, now, l.cfg.Options) })
	if len(plan) == 0 {
		return 0, nil
	}
	_, err := l.cfg.Applier.Apply(ctx, Encode(&Allocate{Time: now, Allocations: plan}))
	if err != nil {
		return 0, fmt.Errorf("commit %d allocations: %w", len(plan), err)
	}
	l.cfg.Logger.Debug("allocated", "builds", len(plan))
	return len(plan), nil
}
