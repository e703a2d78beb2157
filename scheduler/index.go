package scheduler

import "slices"

// The read index: what status pages and metrics need without walking every
// build. It is derived from the builds alone, never written to a snapshot:
// Apply keeps it up to date through setState, setLast and touchBuild, and
// UnmarshalState rebuilds it from the restored builds (rebuildIndex). Every
// update depends only on the state and the command, so Apply stays
// deterministic; the property test checks it against a full recount.

// numStates bounds BuildState values, for arrays indexed by state.
const numStates = int(BuildAvailable) + 1

// recentSize is how many recently ended builds the index remembers.
const recentSize = 64

// hourNs is one hour in nanoseconds, the bucket of FinishedPerHour.
const hourNs = int64(3600e9)

// keepHours is how many hours of finished counts the index keeps before the
// state's clock.
const keepHours = 72

// index is the derived read index of a State.
type index struct {
	byState   [numStates]bitset
	bySystem  map[uint32]*systemIndex // by system name index
	byNode    []bitset                // by node index, of each build's latest allocation
	hours     map[int64]*[2]int       // hour → builds that ran and succeeded, failed
	recent    []uint32                // builds that ran and ended, oldest first, at most recentSize
	history   map[uint32][]attempt    // earlier attempts of builds allocated more than once
	compacted bitset                  // builds whose record was compacted (compact.go)

	// What the command being applied changed.
	start     int            // number of builds before it
	touched   []touchedBuild // builds it changed, in the order first changed
	touchedAt map[uint32]int // build index → position in touched
	members   []uint16       // nodes that joined, were lost or left
}

// systemIndex is the builds of one system.
type systemIndex struct {
	builds bitset
	counts [numStates]int
}

// touchedBuild is a build the command being applied changed, with its
// record as it was before (nil for a build the command added).
type touchedBuild struct {
	bi   uint32
	prev *build
}

// keepTouched bounds the capacity kept between commands, so that one huge
// Submit does not hold its bookkeeping for good.
const keepTouched = 4096

// system returns the index of a system, creating it.
func (ix *index) system(sys uint32) *systemIndex {
	if ix.bySystem == nil {
		ix.bySystem = map[uint32]*systemIndex{}
	}
	si := ix.bySystem[sys]
	if si == nil {
		si = &systemIndex{}
		ix.bySystem[sys] = si
	}
	return si
}

// add indexes build bi in state st.
func (ix *index) add(bi uint32, sys uint32, st BuildState) {
	si := ix.system(sys)
	if !si.builds.has(bi) {
		si.builds.set(bi)
	}
	ix.byState[st].set(bi)
	si.counts[st]++
}

// remove unindexes build bi from state st.
func (ix *index) remove(bi uint32, sys uint32, st BuildState) {
	ix.byState[st].unset(bi)
	ix.system(sys).counts[st]--
}

// setNode indexes build bi under node index+1 last (0: none).
func (ix *index) setNode(bi uint32, old, last uint16) {
	if old != 0 && int(old) <= len(ix.byNode) {
		ix.byNode[old-1].unset(bi)
	}
	if last == 0 {
		return
	}
	for len(ix.byNode) < int(last) {
		ix.byNode = append(ix.byNode, nil)
	}
	ix.byNode[last-1].set(bi)
}

// begin starts recording what a command changes.
func (ix *index) begin(builds int) {
	ix.start = builds
	if cap(ix.touched) > keepTouched {
		ix.touched, ix.touchedAt = nil, nil
	}
	ix.touched = ix.touched[:0]
	clear(ix.touchedAt)
	ix.members = ix.members[:0]
}

// touchBuild records that the command being applied is about to change
// build bi; the first call per command keeps the record as it was. Every
// change of a build's state, attempt or failure goes through it first.
func (s *State) touchBuild(bi uint32) {
	ix := &s.ix
	if _, ok := ix.touchedAt[bi]; ok {
		return
	}
	if ix.touchedAt == nil {
		ix.touchedAt = map[uint32]int{}
	}
	ix.touchedAt[bi] = len(ix.touched)
	tb := touchedBuild{bi: bi}
	if int(bi) < ix.start {
		prev := *s.builds[bi]
		tb.prev = &prev
	}
	ix.touched = append(ix.touched, tb)
}

// touchMember records that node n joined, was lost or left.
func (s *State) touchMember(n uint16) {
	if !slices.Contains(s.ix.members, n) {
		s.ix.members = append(s.ix.members, n)
	}
}

// setState moves build bi to state st, keeping the index up to date.
func (s *State) setState(bi uint32, st BuildState) {
	b := s.builds[bi]
	if b.state == st {
		return
	}
	s.touchBuild(bi)
	if b.state != 0 {
		s.ix.remove(bi, b.system, b.state)
	}
	s.ix.add(bi, b.system, st)
	b.state = st
}

// setLast records node index+1 last as the node of build bi's latest
// allocation.
func (s *State) setLast(bi uint32, last uint16) {
	b := s.builds[bi]
	s.touchBuild(bi)
	s.ix.setNode(bi, b.last, last)
	b.last = last
}

// finishIndex updates what the index derives from whole transitions (finished
// counts, recent builds, earlier attempts) once a command has been applied.
func (s *State) finishIndex() {
	for _, tb := range s.ix.touched {
		if tb.prev != nil && s.builds[tb.bi] != nil { // a new build has no transition yet, a compacted one no future
			s.derive(tb.bi, tb.prev, s.builds[tb.bi])
		}
	}
	s.trimHours()
}

// ran reports whether a build in state st is on a node.
func ran(st BuildState) bool { return st == BuildAllocated || st == BuildRunning }

// derive updates the derived parts for one build that went from p to b.
func (s *State) derive(bi uint32, p, b *build) {
	ix := &s.ix
	if ran(p.state) && !ran(b.state) {
		if b.state == BuildSucceeded || b.state == BuildFailed {
			s.countFinished(b)
		}
		if b.state.Done() {
			ix.pushRecent(bi)
		} else {
			// Re-queued after a transient failure: the record keeps the
			// reason until the next attempt, but not when the attempt ended.
			ix.pushAttempt(bi, attemptOf(p, b.reason, b.message, BuildQueued, s.last))
		}
		return
	}
	// An ended attempt is about to be overwritten (a new allocation, a
	// retry, a resubmission): keep it.
	if p.state.Done() && p.allocated != 0 &&
		(b.allocated != p.allocated || b.reason != p.reason || b.finished != p.finished) {
		ix.pushAttempt(bi, attemptOf(p, p.reason, p.message, p.state, p.finished))
	}
}

// countFinished counts a build that ran and ended in its hour.
func (s *State) countFinished(b *build) {
	if s.ix.hours == nil {
		s.ix.hours = map[int64]*[2]int{}
	}
	h := b.finished / hourNs
	c := s.ix.hours[h]
	if c == nil {
		c = &[2]int{}
		s.ix.hours[h] = c
	}
	if b.state == BuildSucceeded {
		c[0]++
	} else {
		c[1]++
	}
}

// trimHours forgets finished counts older than keepHours before the clock.
func (s *State) trimHours() {
	oldest := s.last/hourNs - keepHours
	for h := range s.ix.hours {
		if h < oldest {
			delete(s.ix.hours, h) // the order of deletion does not matter
		}
	}
}

// pushRecent remembers bi as the latest build that ran and ended.
func (ix *index) pushRecent(bi uint32) {
	if i := slices.Index(ix.recent, bi); i >= 0 {
		ix.recent = slices.Delete(ix.recent, i, i+1)
	}
	if len(ix.recent) == recentSize {
		ix.recent = slices.Delete(ix.recent, 0, 1)
	}
	ix.recent = append(ix.recent, bi)
}

// pushAttempt adds an ended attempt to bi's history, once.
func (ix *index) pushAttempt(bi uint32, a attempt) {
	h := ix.history[bi]
	if n := len(h); n > 0 && h[n-1].allocated == a.allocated {
		return // already recorded when it ended
	}
	if ix.history == nil {
		ix.history = map[uint32][]attempt{}
	}
	ix.history[bi] = append(h, a)
}

// attempt is one allocation of a build and how it ended.
type attempt struct {
	node      uint16 // node index + 1
	allocated int64
	started   int64
	ended     int64
	state     BuildState // what the build became: queued when re-queued
	reason    Reason
	message   string
}

// attemptOf describes p's attempt, ended as given.
func attemptOf(p *build, r Reason, msg string, st BuildState, ended int64) attempt {
	return attempt{node: p.last, allocated: p.allocated, started: p.started, ended: ended,
		state: st, reason: r, message: msg}
}

// rebuildIndex derives the index from the builds, after a restore. Earlier
// attempts are not in a snapshot, so a restored state knows only each
// build's latest one.
func (s *State) rebuildIndex() {
	s.ix = index{}
	type ended struct {
		bi       uint32
		finished int64
	}
	var done []ended
	for i, b := range s.builds {
		bi := uint32(i)
		if b == nil {
			s.ix.compacted.set(bi)
			continue
		}
		s.ix.add(bi, b.system, b.state)
		s.ix.setNode(bi, 0, b.last)
		if b.allocated == 0 || !b.state.Done() {
			continue
		}
		if b.state == BuildSucceeded || b.state == BuildFailed {
			s.countFinished(b)
		}
		done = append(done, ended{bi, b.finished})
	}
	s.trimHours()
	slices.SortStableFunc(done, func(a, b ended) int { return compareInt64(a.finished, b.finished) })
	for _, e := range done[max(0, len(done)-recentSize):] {
		s.ix.recent = append(s.ix.recent, e.bi)
	}
}

func compareInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
