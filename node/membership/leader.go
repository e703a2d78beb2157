package membership

import (
	"context"
	"errors"
	"time"

	"github.com/tbfg/tbfg-node/internal/loops"
	"github.com/tbfg/tbfg-node/mesh"
	"github.com/tbfg/tbfg-node/scheduler"
)

// establishLeadership starts the leader-only loops unless they run. A loop
// that fails to start is logged, and tried again on the next tick.
func (m *Membership) establishLeadership(ctx context.Context) {
	if m.leading != nil {
		return
	}
	t := time.NewTicker(m.tick)
	l, err := scheduler.NewLeader(scheduler.LeaderConfig{
		FSM: m.cfg.FSM, Applier: m.cfg.Mesh, Nodes: m.nodeViews, Now: m.cfg.Now,
		Tick: t.C, Logger: m.log.With("part", "allocation"),
	})
	if err != nil {
		t.Stop()
		m.log.Error("allocation loop", "err", err)
		return
	}
	g := loops.New(ctx, m.log)
	g.Defer("allocation ticker", func() error { t.Stop(); return nil })
	g.Go("allocation loop", nil, func(ctx context.Context) error {
		if err := l.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			m.log.Warn("allocation loop stopped", "err", err)
		}
		return nil
	})
	ct := time.NewTicker(m.cfg.CompactEvery)
	g.Defer("compaction ticker", func() error { ct.Stop(); return nil })
	g.Go("compaction loop", nil, func(ctx context.Context) error { return m.compactLoop(ctx, ct.C) })
	m.leading = g
	m.log.Info("leading: allocating builds, compacting the history")
}

// revokeLeadership stops the leader-only loops, if they run, and waits for
// them.
func (m *Membership) revokeLeadership() {
	if m.leading == nil {
		return
	}
	_ = m.leading.Stop() // the loops log their own failures
	m.leading = nil
	m.log.Info("no longer leading: allocation and compaction stopped")
}

// nodeViews turns the gossip of the members into the scheduler's node views.
// Members not heard from within three gossip intervals get nothing new.
func (m *Membership) nodeViews() []scheduler.NodeView {
	now := m.cfg.Now()
	var out []scheduler.NodeView
	for _, mm := range m.cfg.Mesh.Members() {
		if mm.Status == nil || now.Sub(mm.LastSeen) > 3*m.cfg.GossipInterval {
			continue
		}
		out = append(out, View(mm.ID, *mm.Status))
	}
	return out
}

// View is the scheduler's view of a node from its gossiped status: what the
// leader plans with, and what status pages use to say why a node takes no
// new builds (NodeView.NoBuildsReason).
func View(id string, st mesh.NodeStatus) scheduler.NodeView {
	return scheduler.NodeView{ID: id, Running: st.RunningBuilds, Load1: st.Load1, Cores: st.Cores,
		FreeDisk: st.StoreFreeBytes, MinFree: st.MinFree, LoadLimit: st.MaxLoad, Speed: st.Speed}
}

// reapLost applies NodeLost for every member lostMembers lists.
func (m *Membership) reapLost(ctx context.Context) {
	for _, id := range m.lostMembers(m.cfg.Now()) {
		// One attempt per tick and member: a failing apply is retried on
		// the next tick.
		ctx, cancel := context.WithTimeout(ctx, applyTimeout)
		_, err := m.cfg.Mesh.Apply(ctx, scheduler.Encode(&scheduler.NodeLost{Time: m.cfg.Now(), Node: id}))
		cancel()
		if err != nil {
			m.log.Warn("declare node lost", "node", id, "err", err)
			continue
		}
		m.log.Info("node lost: its builds are re-queued", "node", id)
	}
}

// lostMembers lists the active members of the build queue, other than this
// node, that are gone from the mesh or silent, for longer than RemoveAfter
// since they were last heard or registered.
func (m *Membership) lostMembers(now time.Time) []string {
	self := m.cfg.Mesh.ID()
	inMesh := map[string]mesh.Member{}
	for _, mm := range m.cfg.Mesh.Members() {
		inMesh[mm.ID] = mm
	}
	var lost []string
	m.cfg.FSM.Read(func(st *scheduler.State) {
		for _, mi := range st.Members() {
			if mi.Status != "active" || mi.ID == self {
				continue
			}
			// Silence counts from the last gossip or the last NodeJoined,
			// whichever is later: a restarted node registers again before
			// the mesh has it back in the configuration and before its
			// gossip reaches the leader. A member in the configuration
			// never heard by gossip (this leader may have just taken over)
			// is not silent: the mesh removes it if it stays so.
			mm, inConfig := inMesh[mi.ID]
			heard := mm.LastSeen
			if mi.Joined.After(heard) {
				heard = mi.Joined
			}
			if now.Sub(heard) > m.cfg.RemoveAfter && (!inConfig || !mm.LastSeen.IsZero()) {
				lost = append(lost, mi.ID)
			}
		}
	})
	return lost
}
