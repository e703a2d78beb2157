package scheduler

import (
	"fmt"
	"strings"
)

// applyNodeJoined adds a member or updates one (a restarted or reconfigured
// node joins again). A lost node becomes active again.
func (s *State) applyNodeJoined(c *NodeJoined) error {
	if c.Node == "" || len(c.Systems) == 0 {
		return fmt.Errorf("node joined: %w: needs a node id and at least one system", ErrInvalid)
	}
	n, ok := s.nodeIndex(c.Node)
	if !ok && len(s.nodes) >= 1<<16-1 {
		return fmt.Errorf("node joined %s: %w: too many nodes", c.Node, ErrInvalid)
	}
	t := s.now(c.Time) // only once the command is known to be valid
	if !ok {
		n = uint16(len(s.nodes))
		id := strings.Clone(c.Node)
		s.nodes = append(s.nodes, &member{id: id})
		s.byNode[id] = n
	}
	m := s.nodes[n]
	wasActive := m.status == memberActive
	m.key, m.nixKey = strings.Clone(c.Key), strings.Clone(c.NixKey)
	m.systems, m.features = s.nameSet(c.Systems), s.nameSet(c.Features)
	m.maxBuilds, m.status, m.joined = max(c.MaxBuilds, 1), memberActive, t
	if !wasActive {
		s.heldAgain(n)
	}
	s.touchNode(n)
	s.touchMember(n)
	s.updateBlocked()
	return nil
}

// heldAgain records as newly available the paths of a node that came back.
func (s *State) heldAgain(n uint16) {
	for p := range s.paths {
		if containsSorted(s.paths[p].holders, n) && s.available(uint32(p)) {
			s.fx.paths = append(s.fx.paths, uint32(p))
			s.recoverProducer(uint32(p))
		}
	}
}

// applyNodeLost re-queues the builds of a member that stopped answering. Its
// items stay recorded but count as unavailable until it joins again.
func (s *State) applyNodeLost(c *NodeLost) error {
	n, m, err := s.lookupNode(c.Node)
	if err != nil {
		return fmt.Errorf("node lost: %w", err)
	}
	t := s.now(c.Time)
	if m.status == memberActive {
		m.status = memberLost
	}
	s.touchMember(n)
	s.requeueNode(n, t)
	s.updateBlocked()
	s.rebuildLost(n)
	return nil
}

// applyNodeLeft removes a member: its builds are re-queued and it no longer
// holds anything.
func (s *State) applyNodeLeft(c *NodeLeft) error {
	n, m, err := s.lookupNode(c.Node)
	if err != nil {
		return fmt.Errorf("node left: %w", err)
	}
	t := s.now(c.Time)
	m.status = memberLeft
	s.touchMember(n)
	s.requeueNode(n, t)
	s.updateBlocked()
	s.rebuildLost(n)
	for p := range s.paths {
		e := &s.paths[p]
		e.holders = removeSorted(e.holders, n)
	}
	return nil
}

// rebuildLost re-queues the builds of outputs that node n held and that are
// now nowhere available, when something still waits for them.
func (s *State) rebuildLost(n uint16) {
	for p := range s.paths {
		if containsSorted(s.paths[p].holders, n) {
			s.rebuildIfNeeded(uint32(p))
		}
	}
}

// rebuildIfNeeded re-queues the producer of path p if p is no longer
// available anywhere, the producer is not going to build it, and a build
// that is not finished needs it; if the producer failed, the waiting builds
// fail as its dependents.
func (s *State) rebuildIfNeeded(p uint32) {
	pr := s.paths[p].producer
	if pr == noProducer || s.available(p) {
		return
	}
	b := s.builds[pr]
	switch b.state {
	case BuildFailed, BuildCanceled, BuildFailedDependency:
		// Its output had appeared another way and is gone again.
		s.propagateFailure(uint32(pr), s.last)
		return
	case BuildSucceeded, BuildAvailable:
	default:
		return
	}
	for _, di := range b.dependents {
		if d := s.builds[di]; d != nil && !d.state.Done() && s.needs(d, p) {
			s.requeueFresh(uint32(pr))
			return
		}
	}
}

// needs reports whether b has path p as an input.
func (s *State) needs(b *build, p uint32) bool {
	for _, in := range b.inputs {
		if in == p {
			return true
		}
	}
	return false
}

// requeueNode ends every build allocated to or running on node n as lost; it
// does not wait before the next attempt since another node can take it.
func (s *State) requeueNode(n uint16, t int64) {
	for bi, b := range s.builds {
		if b != nil && b.node == n+1 && (b.state == BuildAllocated || b.state == BuildRunning) {
			s.fail(uint32(bi), ReasonAgentLost, "node "+s.nodes[n].id+" was lost", t, false)
		}
	}
	s.touchNode(n)
}

// updateBlocked moves builds between queued and blocked after a membership
// change.
func (s *State) updateBlocked() {
	served := map[uint32]bool{}
	for _, m := range s.nodes {
		if m.status == memberActive {
			for _, sys := range m.systems {
				served[sys] = true
			}
		}
	}
	for bi, b := range s.builds {
		switch {
		case b == nil:
		case b.state == BuildQueued && !served[b.system]:
			s.setState(uint32(bi), BuildBlocked)
		case b.state == BuildBlocked && served[b.system]:
			s.setState(uint32(bi), BuildQueued)
		}
	}
}

// applyHolderAdded records that a node holds items.
func (s *State) applyHolderAdded(c *HolderAdded) error {
	n, _, err := s.lookupNode(c.Node)
	if err != nil {
		return fmt.Errorf("holder added: %w", err)
	}
	if err := validateItems(c.Items); err != nil {
		return fmt.Errorf("holder added by %s: %w", c.Node, err)
	}
	for _, it := range c.Items {
		if p, ok := s.byPath[it.Path]; ok {
			if info := s.paths[p].info; info != nil && info.NarHash != it.NarHash {
				return fmt.Errorf("holder added by %s: %s: %w (%s, recorded %s)",
					c.Node, it.Path, ErrHashMismatch, it.NarHash, info.NarHash)
			}
		}
	}
	s.now(c.Time)
	s.addHolder(n, c.Items)
	return nil
}

// addHolder registers node n as a holder of items (already validated). The
// first narinfo recorded for a path is kept: it is the one served verbatim.
func (s *State) addHolder(n uint16, items []Item) {
	for i := range items {
		it := items[i]
		p := s.path(it.Path)
		e := &s.paths[p]
		if e.info != nil && e.info.NarHash != it.NarHash {
			continue // a conflicting copy (only possible inside Submit); ignored
		}
		if e.info == nil {
			e.info = cloneItem(it)
			s.byHash[hashPart(it.Path)] = p
		}
		was := s.available(p)
		e.holders = insertSorted(e.holders, n)
		if !was && s.available(p) {
			s.fx.paths = append(s.fx.paths, p)
			s.recoverProducer(p)
		}
	}
}

// recoverProducer re-queues failed-dependency builds waiting on a failed
// build whose output became available another way.
func (s *State) recoverProducer(p uint32) {
	pr := s.paths[p].producer
	if pr == noProducer {
		return
	}
	switch s.builds[pr].state {
	case BuildFailed, BuildCanceled, BuildFailedDependency:
		s.recover(uint32(pr))
	}
}

// applyHolderRemoved records that a node dropped paths. Paths it did not hold
// are ignored.
func (s *State) applyHolderRemoved(c *HolderRemoved) error {
	n, _, err := s.lookupNode(c.Node)
	if err != nil {
		return fmt.Errorf("holder removed: %w", err)
	}
	s.now(c.Time)
	for _, path := range c.Paths {
		if p, ok := s.byPath[path]; ok {
			e := &s.paths[p]
			e.holders = removeSorted(e.holders, n)
			s.rebuildIfNeeded(p)
		}
	}
	return nil
}
