package mesh

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// tick is the membership loop's period.
func (m *Mesh) tick() time.Duration {
	return max(m.cfg.Timing.HeartbeatTimeout/2, 50*time.Millisecond)
}

// membershipLoop keeps connections to members and explicit peers, and on
// the leader reconciles the configuration; a member cut off from the leader
// asks to be added again.
func (m *Mesh) membershipLoop(explicit []peer.ID) {
	t := time.NewTicker(m.tick())
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
		}
		rn := m.raftNode()
		if rn == nil {
			continue
		}
		cfg := rn.configuration()
		m.mem.setServers(cfg)
		m.memberFeed.set(memberSignature(cfg, m.Leader()))
		m.dialMissing(append(slices.Clone(explicit), serverPeers(cfg)...))
		if rn.r.State() == raft.Leader {
			m.reconcile(rn, cfg)
		} else {
			m.mem.mu.Lock()
			m.mem.wasLeader = false
			m.mem.mu.Unlock()
			m.maybeRejoin(rn, cfg, explicit)
		}
		if err := m.book.save(); err != nil {
			m.log.Warn("save address book", "error", err)
		}
	}
}

func serverPeers(cfg raft.Configuration) []peer.ID {
	var out []peer.ID
	for _, s := range cfg.Servers {
		if p, err := peer.Decode(string(s.ID)); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// detachAfter is how long a follower may go without hearing from a leader
// before it asks to be added again.
func (m *Mesh) detachAfter() time.Duration {
	return max(10*m.cfg.Timing.ElectionTimeout, time.Second)
}

// maybeRejoin sends a join request when this member has not heard from a
// leader for a while or is not in its own configuration (it was removed,
// for example while its link was down).
func (m *Mesh) maybeRejoin(rn *raftNode, cfg raft.Configuration, explicit []peer.ID) {
	if !m.mem.isJoined() {
		return
	}
	self := raft.ServerID(m.ID())
	in := slices.ContainsFunc(cfg.Servers, func(s raft.Server) bool { return s.ID == self })
	if in && time.Since(rn.r.LastContact()) < m.detachAfter() {
		return
	}
	m.mem.mu.Lock()
	due := time.Since(m.mem.detached) > m.detachAfter()
	if due {
		m.mem.detached = time.Now()
	}
	m.mem.mu.Unlock()
	if !due {
		return
	}
	ctx, cancel := context.WithTimeout(m.ctx, m.detachAfter())
	defer cancel()
	if ok, err := m.tryJoin(ctx, explicit); !ok && err != nil {
		m.log.Debug("rejoin", "error", err)
	}
}

// lastHeard is when id was last heard of: its latest gossip, or now for
// this node and for a connected member that has not gossiped yet (it just
// joined). Gossip, not the connection, is the liveness signal: a TCP
// connection over a link that went down stays "connected" until yamux's
// keepalive gives up.
func (m *Mesh) lastHeard(id string) (time.Time, bool) {
	if id == m.ID() {
		return time.Now(), true
	}
	if e, ok := m.gsp.view.get(id); ok {
		return e.seen, true
	}
	if p, err := peer.Decode(id); err == nil && m.host.Network().Connectedness(p) == network.Connected {
		return time.Now(), true
	}
	return time.Time{}, false
}

// aliveWindow is how recent lastHeard must be for a member to count as
// healthy when voters are chosen: five gossip intervals, at most
// RemoveAfter.
func (m *Mesh) aliveWindow() time.Duration { return min(5*m.cfg.GossipInterval, m.cfg.RemoveAfter) }

// healthy reports whether the leader currently hears from id.
func (m *Mesh) healthy(id string) bool {
	t, ok := m.lastHeard(id)
	return ok && time.Since(t) < m.aliveWindow()
}

// eligible reports whether id may be a voter, as far as the leader knows.
func (m *Mesh) eligible(id string) bool {
	if id == m.ID() {
		return m.cfg.Voter
	}
	if e, ok := m.gsp.view.get(id); ok {
		return e.voter
	}
	m.mem.mu.Lock()
	defer m.mem.mu.Unlock()
	return m.mem.eligible[id]
}

// reconcile makes at most one configuration change per tick: remove a
// member silent for RemoveAfter, then bring the voter count to its target.
func (m *Mesh) reconcile(rn *raftNode, cfg raft.Configuration) {
	silent := m.updateHeard(cfg)
	var err error
	switch {
	case len(silent) > 0:
		err = m.removeSilent(rn, cfg, silent)
	default:
		err = m.balanceVoters(rn, cfg)
	}
	if err != nil && !errors.Is(err, raft.ErrNotLeader) && !errors.Is(err, raft.ErrLeadershipLost) {
		m.log.Warn("reconcile membership", "error", err)
	}
}

// updateHeard records when each member was last heard of and returns those
// silent for longer than RemoveAfter. A new leader starts every member's
// clock afresh.
func (m *Mesh) updateHeard(cfg raft.Configuration) []string {
	now := time.Now()
	heard := map[string]time.Time{}
	for _, s := range cfg.Servers {
		if t, ok := m.lastHeard(string(s.ID)); ok {
			heard[string(s.ID)] = t
		}
	}
	m.mem.mu.Lock()
	defer m.mem.mu.Unlock()
	if !m.mem.wasLeader {
		clear(m.mem.heard)
		m.mem.wasLeader = true
	}
	var silent []string
	for _, s := range cfg.Servers {
		id := string(s.ID)
		last, ok := m.mem.heard[id]
		switch {
		case !ok:
			last = now // first seen by this leader
		case heard[id].After(last):
			last = heard[id]
		}
		m.mem.heard[id] = last
		if now.Sub(last) > m.cfg.RemoveAfter {
			silent = append(silent, id)
		}
	}
	return silent
}

// removeSilent removes one silent member, unless it is a voter whose removal
// would leave fewer healthy voters than the new configuration's quorum.
func (m *Mesh) removeSilent(rn *raftNode, cfg raft.Configuration, silent []string) error {
	voters, healthyVoters := 0, 0
	for _, s := range cfg.Servers {
		if s.Suffrage == raft.Voter {
			voters++
			if m.healthy(string(s.ID)) {
				healthyVoters++
			}
		}
	}
	for _, id := range silent {
		isVoter := slices.ContainsFunc(cfg.Servers, func(s raft.Server) bool { return string(s.ID) == id && s.Suffrage == raft.Voter })
		if isVoter && healthyVoters < (voters-1)/2+1 {
			continue
		}
		m.log.Info("removing silent member", "peer", id, "silent_for", m.cfg.RemoveAfter)
		if err := rn.await(rn.r.RemoveServer(raft.ServerID(id), 0, rpcTimeout)); err != nil {
			return fmt.Errorf("remove silent %s: %w", id, err)
		}
		return nil
	}
	return nil
}

// balanceVoters makes the change planVoters asks for, if any.
func (m *Mesh) balanceVoters(rn *raftNode, cfg raft.Configuration) error {
	ch := planVoters(m.seats(cfg))
	voters := 0
	for _, s := range cfg.Servers {
		if s.Suffrage == raft.Voter {
			voters++
		}
	}
	switch {
	case ch.promote != "":
		m.log.Info("promoting to voter", "peer", ch.promote, "voters", voters+1, "conn", m.ConnKind(string(ch.promote)))
		return rn.await(rn.r.AddVoter(ch.promote, raft.ServerAddress(ch.promote), 0, rpcTimeout))
	case ch.demote != "":
		m.log.Info("demoting voter", "peer", ch.demote, "voters", voters-1, "conn", m.ConnKind(string(ch.demote)))
		return rn.await(rn.r.DemoteVoter(ch.demote, 0, rpcTimeout))
	}
	return nil
}

// seats describes every server of cfg as this node (the leader) sees it.
func (m *Mesh) seats(cfg raft.Configuration) []seat {
	var out []seat
	for _, s := range cfg.Servers {
		id := string(s.ID)
		out = append(out, seat{
			id:         s.ID,
			voter:      s.Suffrage == raft.Voter,
			self:       id == m.ID(),
			healthy:    m.healthy(id),
			eligible:   m.eligible(id),
			ineligible: m.knownIneligible(id),
			relayed:    id != m.ID() && m.ConnKind(id) != ConnDirect,
		})
	}
	return out
}

// effectiveTarget is voterTarget for n servers of which eligible may vote,
// rounded down to an odd count: an even number of voters tolerates no more
// failures than one fewer, and waits for more of them.
func effectiveTarget(n, eligible int) int {
	t := min(voterTarget(n), eligible)
	if t > 1 && t%2 == 0 {
		t--
	}
	return max(t, 1)
}

// knownIneligible reports whether id said (by join request or gossip) that
// it must not vote.
func (m *Mesh) knownIneligible(id string) bool {
	if id == m.ID() {
		return !m.cfg.Voter
	}
	if e, ok := m.gsp.view.get(id); ok {
		return !e.voter
	}
	m.mem.mu.Lock()
	defer m.mem.mu.Unlock()
	v, ok := m.mem.eligible[id]
	return ok && !v
}

// Leave removes this node from the configuration, transferring leadership
// first if it leads.
func (m *Mesh) Leave(ctx context.Context) error {
	rn := m.raftNode()
	if rn == nil {
		return ErrClosed
	}
	if len(rn.configuration().Servers) <= 1 {
		return errors.New("leave: this node is the only member of the mesh")
	}
	if rn.r.State() == raft.Leader {
		if err := rn.await(rn.r.LeadershipTransfer()); err != nil {
			return fmt.Errorf("leave: transfer leadership: %w", err)
		}
	}
	// A node that is leaving must not ask to be added back.
	m.mem.setJoined(false)
	for wait := m.retryBase(); ; wait = min(2*wait, time.Second) {
		err := m.removeSelf(ctx)
		if err == nil {
			return nil
		}
		if !sleepCtx(ctx, wait) {
			m.mem.setJoined(true)
			return fmt.Errorf("leave: %w (last attempt: %w)", ctx.Err(), err)
		}
	}
}

// removeSelf asks the leader (or itself, if leadership came back) to remove
// this node.
func (m *Mesh) removeSelf(ctx context.Context) error {
	rn := m.raftNode()
	if rn == nil {
		return ErrClosed
	}
	self := raft.ServerID(m.ID())
	if !slices.ContainsFunc(rn.configuration().Servers, func(s raft.Server) bool { return s.ID == self }) {
		return nil
	}
	leader := m.Leader()
	switch leader {
	case "":
		return errors.New("no leader elected")
	case m.ID():
		return rn.await(rn.r.RemoveServer(self, 0, rpcTimeout))
	}
	p, err := peer.Decode(leader)
	if err != nil {
		return err
	}
	_, err = m.call(ctx, p, &rpcRequest{Kind: kindRemove, ID: m.ID()})
	return err
}
