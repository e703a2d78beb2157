package membership

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tbfg/tbfg-node/mesh"
	"github.com/tbfg/tbfg-node/scheduler"
)

// errNotInConfiguration says the node waits for the mesh to (re)admit it
// before registering in the build queue: normal for a while after start.
var errNotInConfiguration = errors.New("not in the mesh's Raft configuration yet")

// nodeJoined is the NodeJoined command that describes this node.
func (m *Membership) nodeJoined() *scheduler.NodeJoined {
	j := m.cfg.Registration
	j.Time, j.Node = m.cfg.Now(), m.cfg.Mesh.ID()
	return &j
}

// EnsureJoined applies NodeJoined unless the state already has this node
// active with the same configuration, or the node is leaving. NodeJoined is
// idempotent.
func (m *Membership) EnsureJoined(ctx context.Context) error {
	want := m.nodeJoined()
	if m.leaving.Load() || m.isMember(want) {
		return nil
	}
	// A node not yet back in the configuration sees its own registration
	// only once it catches up with the log: do not repeat it every tick.
	if last := m.lastJoined.Load(); last != 0 && m.cfg.Now().Sub(time.Unix(0, last)) < m.cfg.RemoveAfter/2 {
		return nil
	}
	// Until the mesh has this node back in its Raft configuration (after a
	// restart or a removal), the leader would declare it lost again at once.
	if !m.inConfiguration() {
		return errNotInConfiguration
	}
	ctx, cancel := context.WithTimeout(ctx, applyTimeout)
	defer cancel()
	if _, err := m.cfg.Mesh.Apply(ctx, scheduler.Encode(want)); err != nil {
		return fmt.Errorf("register as a build node: %w", err)
	}
	m.lastJoined.Store(m.cfg.Now().UnixNano())
	m.log.Info("registered as a build node", "systems", want.Systems, "max_builds", want.MaxBuilds)
	return nil
}

// noteRegistered closes m.registered once the local replica lists this node
// as an active member.
func (m *Membership) noteRegistered() {
	if m.isMember(m.nodeJoined()) {
		m.registeredOnce.Do(func() { close(m.registered) })
	}
}

// inConfiguration reports whether this node is in the Raft configuration.
func (m *Membership) inConfiguration() bool {
	self := m.cfg.Mesh.ID()
	return slices.ContainsFunc(m.cfg.Mesh.Members(), func(mm mesh.Member) bool { return mm.ID == self })
}

// isMember reports whether the state lists the node of j as an active
// member with j's configuration.
func (m *Membership) isMember(j *scheduler.NodeJoined) bool {
	var ok bool
	m.cfg.FSM.Read(func(st *scheduler.State) {
		for _, mi := range st.Members() {
			if mi.ID == j.Node {
				ok = mi.Status == "active" && mi.Key == j.Key && mi.NixKey == j.NixKey && mi.MaxBuilds == j.MaxBuilds &&
					slices.Equal(mi.Systems, j.Systems) && slices.Equal(nonNil(mi.Features), nonNil(j.Features))
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

// Leave takes this node out of the build queue, then out of the mesh. The
// build queue first, while this node is still a member that can commit:
// its builds are re-queued at once rather than after RemoveAfter. If the
// mesh cannot be left, the node registers again as before.
func (m *Membership) Leave(ctx context.Context) error {
	m.leaving.Store(true)
	if err := m.leaveQueue(ctx); err != nil {
		m.log.Warn("leave the build queue", "err", err)
	}
	if err := m.cfg.Mesh.Leave(ctx); err != nil {
		m.leaving.Store(false)
		return fmt.Errorf("leave: %w", err)
	}
	return nil
}

// leaveQueue tells the build queue that this node leaves: its builds are
// re-queued and it holds nothing any more.
func (m *Membership) leaveQueue(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, applyTimeout)
	defer cancel()
	_, err := m.cfg.Mesh.Apply(ctx, scheduler.Encode(&scheduler.NodeLeft{Time: m.cfg.Now(), Node: m.cfg.Mesh.ID()}))
	var fe *mesh.FSMError
	if errors.As(err, &fe) {
		return nil // never registered: nothing to leave
	}
	return err
}
