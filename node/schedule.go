package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/tbfg/tbfg-node/mesh"
	"github.com/tbfg/tbfg-node/scheduler"
)

// errNotInConfiguration says the node waits for the mesh to (re)admit it
// before registering in the build queue: normal for a while after start.
var errNotInConfiguration = errors.New("not in the mesh's Raft configuration yet")

// applyTimeout bounds each command the scheduling loop commits, so a mesh
// without a leader cannot hold the loop.
const applyTimeout = 10 * time.Second

// scheduling keeps this node's place in the replicated build queue: it
// registers the node as a member (NodeJoined, again whenever the state lost
// it) and, while this node leads, runs the scheduler's allocation loop and
// declares lost the members that left the Raft configuration or went silent.
type scheduling struct {
	n    *Node
	log  *slog.Logger
	tick time.Duration

	// Owned by the loop goroutine.
	leader      bool // the mesh last reported this node as leader
	leading     bool // the allocation loop runs
	stopLeader  context.CancelFunc
	leaderDone  chan struct{}
	joinFailing bool
}

func newScheduling(n *Node, log *slog.Logger) *scheduling {
	return &scheduling{n: n, log: log, tick: min(n.cfg.GossipInterval, time.Second)}
}

// loop starts and stops the allocation loop as the mesh reports leadership
// changes, and on every tick registers the node and, while it leads,
// declares lost members.
func (s *scheduling) loop(ctx context.Context) {
	t := time.NewTicker(s.tick)
	defer t.Stop()
	defer s.stopLeading()
	lead := s.n.mesh.WatchLeadership(ctx)
	s.onTick(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case leader, ok := <-lead:
			if !ok {
				lead = nil // the mesh closed: not leading, and no more news
			}
			s.follow(ctx, ok && leader)
		case <-t.C:
			s.onTick(ctx)
		}
	}
}

// follow starts the allocation loop when this node becomes leader and stops
// it when it no longer leads.
func (s *scheduling) follow(ctx context.Context, leader bool) {
	s.leader = leader
	if leader {
		s.startLeading(ctx)
	} else {
		s.stopLeading()
	}
}

// onTick registers the node if needed and, on the leader, declares lost
// members and retries an allocation loop that failed to start.
func (s *scheduling) onTick(ctx context.Context) {
	s.join(ctx)
	s.n.noteRegistered()
	if s.leader {
		s.startLeading(ctx)
		s.reapLost(ctx)
	}
}

// join registers the node in the build queue if needed. A failure is
// retried on the next tick; it is logged as a warning once, then at debug
// level until it succeeds (a node rejoining the mesh fails for a while).
func (s *scheduling) join(ctx context.Context) {
	err := s.n.ensureJoined(ctx)
	switch {
	case err == nil:
		s.joinFailing = false
	case ctx.Err() != nil:
	case errors.Is(err, errNotInConfiguration), s.joinFailing:
		s.log.Debug("not in the build queue yet", "err", err)
	default:
		s.joinFailing = true
		s.log.Warn("not in the build queue yet; retrying", "err", err)
	}
}

// nodeJoined is the NodeJoined command that describes this node.
func (n *Node) nodeJoined() *scheduler.NodeJoined {
	return &scheduler.NodeJoined{Time: time.Now(), Node: n.mesh.ID(), Key: n.keys.GuixPublic(),
		NixKey: n.keys.Nix.Public().String(), Systems: n.cfg.Systems, Features: n.cfg.Features,
		MaxBuilds: n.cfg.MaxBuilds}
}

// ensureJoined applies NodeJoined unless the state already has this node
// active with the same configuration, or the node is leaving. NodeJoined is
// idempotent.
func (n *Node) ensureJoined(ctx context.Context) error {
	want := n.nodeJoined()
	if n.leaving.Load() || n.isMember(want) {
		return nil
	}
	// A node not yet back in the configuration sees its own registration
	// only once it catches up with the log: do not repeat it every tick.
	if last := n.lastJoined.Load(); last != 0 && time.Since(time.Unix(0, last)) < n.cfg.RemoveAfter/2 {
		return nil
	}
	// Until the mesh has this node back in its Raft configuration (after a
	// restart or a removal), the leader would declare it lost again at once.
	if !n.inConfiguration() {
		return errNotInConfiguration
	}
	ctx, cancel := context.WithTimeout(ctx, applyTimeout)
	defer cancel()
	if _, err := n.mesh.Apply(ctx, scheduler.Encode(want)); err != nil {
		return fmt.Errorf("register as a build node: %w", err)
	}
	n.lastJoined.Store(time.Now().UnixNano())
	n.log.Info("registered as a build node", "systems", want.Systems, "max_builds", want.MaxBuilds)
	return nil
}

// noteRegistered closes n.registered once the local replica lists this node
// as an active member, which tells the agent the replica has caught up.
func (n *Node) noteRegistered() {
	if n.isMember(n.nodeJoined()) {
		n.registeredOnce.Do(func() { close(n.registered) })
	}
}

// inConfiguration reports whether this node is in the Raft configuration.
func (n *Node) inConfiguration() bool {
	self := n.mesh.ID()
	return slices.ContainsFunc(n.mesh.Members(), func(m mesh.Member) bool { return m.ID == self })
}

// isMember reports whether the state lists the node of j as an active
// member with j's configuration.
func (n *Node) isMember(j *scheduler.NodeJoined) bool {
	var ok bool
	n.fsm.Read(func(st *scheduler.State) {
		for _, m := range st.Members() {
			if m.ID == j.Node {
				ok = m.Status == "active" && m.Key == j.Key && m.NixKey == j.NixKey && m.MaxBuilds == j.MaxBuilds &&
					slices.Equal(m.Systems, j.Systems) && slices.Equal(nonNil(m.Features), nonNil(j.Features))
				return
			}
		}
	})
	return ok
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// startLeading starts the allocation loop if it does not run.
func (s *scheduling) startLeading(ctx context.Context) {
	if s.leading {
		return
	}
	t := time.NewTicker(s.tick)
	l, err := scheduler.NewLeader(scheduler.LeaderConfig{
		FSM: s.n.fsm, Applier: s.n.mesh, Nodes: s.n.nodeViews, Now: time.Now,
		Tick: t.C, Logger: s.log.With("part", "allocation"),
	})
	if err != nil {
		t.Stop()
		s.log.Error("allocation loop", "err", err)
		return
	}
	ctx, s.stopLeader = context.WithCancel(ctx)
	s.leaderDone = make(chan struct{})
	s.leading = true
	s.log.Info("leading: allocating builds")
	go func() {
		defer close(s.leaderDone)
		defer t.Stop()
		if err := l.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Warn("allocation loop stopped", "err", err)
		}
	}()
}

// stopLeading stops the allocation loop, if it runs, and waits for it.
func (s *scheduling) stopLeading() {
	if !s.leading {
		return
	}
	s.stopLeader()
	<-s.leaderDone
	s.leading = false
	s.log.Info("no longer leading: allocation stopped")
}

// nodeViews turns the gossip of the members into the scheduler's node views.
// Members not heard from within three gossip intervals get nothing new.
func (n *Node) nodeViews() []scheduler.NodeView {
	now := time.Now()
	var out []scheduler.NodeView
	for _, m := range n.mesh.Members() {
		if m.Status == nil || now.Sub(m.LastSeen) > 3*n.cfg.GossipInterval {
			continue
		}
		out = append(out, scheduler.NodeView{ID: m.ID, Running: m.Status.RunningBuilds,
			Load1: m.Status.Load1, Cores: m.Status.Cores, FreeDisk: m.Status.StoreFreeBytes})
	}
	return out
}

// reapLost applies NodeLost for every active member of the build queue that
// is no longer in the Raft configuration (the mesh removed it) or whose
// gossip has been silent for longer than --remove-after.
func (s *scheduling) reapLost(ctx context.Context) {
	for _, id := range s.n.lostMembers(time.Now()) {
		// One attempt per tick and member: a failing apply is retried on
		// the next tick.
		ctx, cancel := context.WithTimeout(ctx, applyTimeout)
		_, err := s.n.mesh.Apply(ctx, scheduler.Encode(&scheduler.NodeLost{Time: time.Now(), Node: id}))
		cancel()
		if err != nil {
			s.log.Warn("declare node lost", "node", id, "err", err)
			continue
		}
		s.log.Info("node lost: its builds are re-queued", "node", id)
	}
}

// lostMembers lists the active members of the build queue, other than this
// node, that are gone from the mesh or silent, for longer than
// --remove-after since they were last heard or registered.
func (n *Node) lostMembers(now time.Time) []string {
	self := n.mesh.ID()
	inMesh := map[string]mesh.Member{}
	for _, m := range n.mesh.Members() {
		inMesh[m.ID] = m
	}
	var lost []string
	n.fsm.Read(func(st *scheduler.State) {
		for _, m := range st.Members() {
			if m.Status != "active" || m.ID == self {
				continue
			}
			// Silence counts from the last gossip or the last NodeJoined,
			// whichever is later: a restarted node registers again before
			// the mesh has it back in the configuration and before its
			// gossip reaches the leader. A member in the configuration
			// never heard by gossip (this leader may have just taken over)
			// is not silent: the mesh removes it if it stays so.
			mm, inConfig := inMesh[m.ID]
			heard := mm.LastSeen
			if m.Joined.After(heard) {
				heard = m.Joined
			}
			if now.Sub(heard) > n.cfg.RemoveAfter && (!inConfig || !mm.LastSeen.IsZero()) {
				lost = append(lost, m.ID)
			}
		}
	})
	return lost
}

// leaveQueue tells the build queue that this node leaves: its builds are
// re-queued and it holds nothing any more.
func (n *Node) leaveQueue(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, applyTimeout)
	defer cancel()
	_, err := n.mesh.Apply(ctx, scheduler.Encode(&scheduler.NodeLeft{Time: time.Now(), Node: n.mesh.ID()}))
	var fe *mesh.FSMError
	if errors.As(err, &fe) {
		return nil // never registered: nothing to leave
	}
	return err
}
