package membership

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tbfg/tbfg-node/internal/loops"
	"github.com/tbfg/tbfg-node/mesh"
	"github.com/tbfg/tbfg-node/scheduler"
)

// applyTimeout bounds each command membership commits, so that a mesh
// without a leader cannot hold the loop.
const applyTimeout = 10 * time.Second

// Mesh is what membership needs of the mesh; *mesh.Mesh implements it.
type Mesh interface {
	// ID is this node's peer ID.
	ID() string
	// Members lists the Raft configuration merged with the gossip view.
	Members() []mesh.Member
	// Apply commits a command through the leader.
	Apply(ctx context.Context, cmd []byte) ([]byte, error)
	// WatchLeadership reports whether this node leads, at once and on
	// every change, until ctx ends or the mesh closes.
	WatchLeadership(ctx context.Context) <-chan bool
	// Leave takes this node out of the mesh.
	Leave(ctx context.Context) error
}

// Config is what a Membership needs.
type Config struct {
	// Mesh is the running mesh.
	Mesh Mesh
	// FSM is this node's replica of the build queue.
	FSM *scheduler.FSM
	// Registration describes this node: its keys, systems, features and
	// max builds. Node and Time are set on each commit.
	Registration scheduler.NodeJoined
	// GossipInterval is how often the members gossip their status; the
	// loop ticks at this interval, at most every second.
	GossipInterval time.Duration
	// RemoveAfter is how long a member may be silent before the leader
	// declares it lost.
	RemoveAfter time.Duration
	// History is how long a finished build's record stays in the
	// replicated state; the leader compacts older ones (--history). 0
	// keeps every build.
	History time.Duration
	// CompactEvery is how often the leader compacts; 0 means
	// DefaultCompactEvery.
	CompactEvery time.Duration
	// Version is this binary's version, for the message of CheckMeshFormat.
	Version string
	// MinFormat is the lowest replicated format this node writes; 0 means
	// scheduler.MinFormat, this binary's.
	MinFormat int
	// Incompatible is called once, from the loop, when a member reads only
	// replicated formats older than this binary writes (ErrMeshTooOld): the
	// node must stop. Nil ignores it.
	Incompatible func(error)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives the logs; nil discards them.
	Logger *slog.Logger
}

// Membership keeps this node registered in the build queue and, while it
// leads, runs the leader-only loops. Build it with New and run it with Run.
type Membership struct {
	cfg  Config
	log  *slog.Logger
	tick time.Duration

	registered     chan struct{} // closed once the state lists this node
	registeredOnce sync.Once
	leaving        atomic.Bool  // set before NodeLeft, so the node does not join again
	lastJoined     atomic.Int64 // when this process last committed NodeJoined, Unix ns

	// Owned by Run's goroutine.
	leader       bool         // the mesh last reported this node as leader
	leading      *loops.Group // the leader-only loops; nil while not leading
	joinFailing  bool
	incompatible bool // Incompatible was called
}

// New returns a Membership over cfg; nothing runs until Run.
func New(cfg Config) *Membership {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.CompactEvery <= 0 {
		cfg.CompactEvery = DefaultCompactEvery
	}
	return &Membership{cfg: cfg, log: cfg.Logger, tick: min(cfg.GossipInterval, time.Second),
		registered: make(chan struct{})}
}

// Registered is closed once the local replica lists this node as an active
// member with its configuration: the replica has then caught up at least
// with this node's own registration.
func (m *Membership) Registered() <-chan struct{} { return m.registered }

// Run registers the node, follows the mesh's leadership changes and does
// the leader's work until ctx ends; then it stops the leader-only loops. It
// returns nil.
func (m *Membership) Run(ctx context.Context) error {
	t := time.NewTicker(m.tick)
	defer t.Stop()
	defer m.revokeLeadership()
	lead := m.cfg.Mesh.WatchLeadership(ctx)
	m.onTick(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case leader, ok := <-lead:
			if !ok {
				lead = nil // the mesh closed: not leading, and no more news
			}
			m.follow(ctx, ok && leader)
		case <-t.C:
			m.onTick(ctx)
		}
	}
}

// follow starts the leader-only loops when this node becomes leader and
// stops them when it no longer leads.
func (m *Membership) follow(ctx context.Context, leader bool) {
	m.leader = leader
	if leader {
		m.establishLeadership(ctx)
	} else {
		m.revokeLeadership()
	}
}

// onTick registers the node if needed and, on the leader, declares lost
// members and retries leader-only loops that failed to start.
func (m *Membership) onTick(ctx context.Context) {
	m.checkFormats()
	m.join(ctx)
	m.noteRegistered()
	if m.leader {
		m.establishLeadership(ctx)
		m.reapLost(ctx)
	}
}

// checkFormats calls Incompatible once if a member reads only formats
// older than this binary writes.
func (m *Membership) checkFormats() {
	if m.incompatible || m.cfg.Incompatible == nil {
		return
	}
	minFormat := m.cfg.MinFormat
	if minFormat == 0 {
		minFormat = scheduler.MinFormat
	}
	if err := CheckMeshFormat(m.cfg.Mesh.Members(), minFormat, m.cfg.Version); err != nil {
		m.incompatible = true
		m.cfg.Incompatible(err)
	}
}

// join registers the node in the build queue if needed. A failure is
// retried on the next tick; it is logged as a warning once, then at debug
// level until it succeeds (a node rejoining the mesh fails for a while).
func (m *Membership) join(ctx context.Context) {
	err := m.EnsureJoined(ctx)
	switch {
	case err == nil:
		m.joinFailing = false
	case ctx.Err() != nil:
	case errors.Is(err, errNotInConfiguration), m.joinFailing:
		m.log.Debug("not in the build queue yet", "err", err)
	default:
		m.joinFailing = true
		m.log.Warn("not in the build queue yet; retrying", "err", err)
	}
}
