package scheduler

import "math/bits"

// takeNext runs on a TakeNext Succeeded of build bi, built by node n, after
// the success was recorded: it gives n the first dependent of bi that is
// now ready and that n may build (Allocate's own checks, against the slot bi
// just freed), and marks it running there at once. Dependents go in the
// allocation loop's order (highest priority, then oldest); none is taken
// while a ready build of higher priority that n could build waits, so the
// shortcut never overtakes what the leader would place first. Like all of
// Apply it depends only on the state and the command.
func (s *State) takeNext(bi uint32, n uint16, t int64) {
	m := s.nodes[n]
	var best ready
	found := false
	for _, di := range s.builds[bi].dependents {
		d := s.builds[di]
		if d == nil || d.state != BuildQueued || d.notBefore > t || !s.inputsAvailable(d) {
			continue
		}
		if s.checkAllocation(Allocation{Build: BuildID(di + 1), Node: m.id}, 0, t) != nil {
			continue
		}
		if r := (ready{prio: d.priority, idx: di}); !found || r.before(best) {
			best, found = r, true
		}
	}
	if !found || s.outranked(best.prio, m, t) {
		return
	}
	d := s.builds[best.idx]
	s.setState(best.idx, BuildRunning)
	s.setLast(best.idx, n+1)
	d.node, d.allocated, d.started = n+1, t, t
	d.attempt++
	m.active++
	s.touchNode(n)
}

// outranked reports whether a queued build with a priority above prio is
// ready and could run on m.
func (s *State) outranked(prio int32, m *member, t int64) bool {
	queued := s.ix.byState[BuildQueued]
	for w := range queued {
		for x := queued.word(w); x != 0; x &= x - 1 {
			b := s.builds[uint32(w)*64+uint32(bits.TrailingZeros64(x))]
			if b == nil || b.priority <= prio || b.notBefore > t {
				continue
			}
			if containsSorted(m.systems, b.system) && subsetSorted(s.featureSets[b.features], m.features) &&
				s.inputsAvailable(b) {
				return true
			}
		}
	}
	return false
}
