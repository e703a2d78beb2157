package scheduler

import (
	"math/bits"
	"slices"
	"strings"
	"time"
)

// Status reads over the index. Each costs about the size of its answer (plus
// one machine word per 64 builds for filtered pages), never a walk of every
// build record, so a status page stays cheap with 100,000 builds.

// BuildFilter selects builds for a page. The zero value selects every build.
type BuildFilter struct {
	// States keeps builds in any of these states; none keeps every state.
	States []BuildState
	// System keeps builds for this system; "" keeps every system.
	System string
	// Node keeps builds whose latest allocation was to this node (running
	// there, or ended there); "" keeps every build.
	Node string
}

// Page is one page of builds.
type Page struct {
	Builds []BuildInfo
	// Next is the id of the last build returned when more builds follow:
	// the before of the next newest-first page, the after of the next
	// oldest-first one. It is 0 on the last page.
	Next BuildID
}

// matcher walks the builds a filter selects, a word of 64 at a time.
type matcher struct {
	states           bitset // union of the wanted states
	any              bool   // no state filter
	system           bitset // with bySystem: builds of the wanted system
	node             bitset // with byNode: builds of the wanted node (may be empty)
	bySystem, byNode bool
	compacted        bitset // builds without a record, never selected
	none             bool   // the filter names a system or node the state does not know
	n                int    // number of builds
}

func (s *State) matcher(f BuildFilter) matcher {
	m := matcher{any: len(f.States) == 0, n: len(s.builds), compacted: s.ix.compacted}
	if !m.any {
		m.states = make(bitset, (len(s.builds)+63)/64)
		for _, st := range f.States {
			if int(st) >= numStates {
				continue
			}
			for w, x := range s.ix.byState[st] {
				if w < len(m.states) {
					m.states[w] |= x
				}
			}
		}
	}
	if f.System != "" {
		sys, ok := s.byName[f.System]
		si := s.ix.bySystem[sys]
		if !ok || si == nil {
			m.none = true
		} else {
			m.system, m.bySystem = si.builds, true
		}
	}
	if f.Node != "" {
		n, ok := s.byNode[f.Node]
		if !ok || int(n) >= len(s.ix.byNode) {
			m.none = true
		} else {
			m.node, m.byNode = s.ix.byNode[n], true
		}
	}
	return m
}

// word returns the selected builds among indices 64w to 64w+63.
func (m *matcher) word(w int) uint64 {
	x := ^uint64(0)
	if rest := m.n - 64*w; rest < 64 {
		x = 1<<uint(rest) - 1
	}
	if !m.any {
		x &= m.states.word(w)
	} else {
		x &^= m.compacted.word(w)
	}
	if m.bySystem {
		x &= m.system.word(w)
	}
	if m.byNode {
		x &= m.node.word(w)
	}
	return x
}

// BuildsNewest returns up to limit builds that f selects with ids below
// before (0: from the newest), newest first.
func (s *State) BuildsNewest(f BuildFilter, before BuildID, limit int) Page {
	m := s.matcher(f)
	end := len(s.builds) // exclusive index bound
	if before != 0 && int(before-1) < end {
		end = int(before - 1)
	}
	var p Page
	if m.none || limit <= 0 || end == 0 {
		return p
	}
	w := (end - 1) / 64
	x := m.word(w) & (^uint64(0) >> uint(63-(end-1)%64))
	for {
		for x != 0 {
			bit := 63 - bits.LeadingZeros64(x)
			x &^= 1 << uint(bit)
			bi := uint32(64*w + bit)
			if len(p.Builds) == limit {
				p.Next = p.Builds[limit-1].ID
				return p
			}
			p.Builds = append(p.Builds, s.info(bi))
		}
		if w == 0 {
			return p
		}
		w--
		x = m.word(w)
	}
}

// BuildsOldest returns up to limit builds that f selects with ids above
// after, oldest first.
func (s *State) BuildsOldest(f BuildFilter, after BuildID, limit int) Page {
	m := s.matcher(f)
	var p Page
	start := min(int(min(after, BuildID(len(s.builds)))), len(s.builds))
	if m.none || limit <= 0 || start >= len(s.builds) {
		return p
	}
	w := start / 64
	x := m.word(w) &^ (1<<uint(start%64) - 1)
	last := (len(s.builds) - 1) / 64
	for {
		for x != 0 {
			bit := bits.TrailingZeros64(x)
			x &^= 1 << uint(bit)
			bi := uint32(64*w + bit)
			if len(p.Builds) == limit {
				p.Next = p.Builds[limit-1].ID
				return p
			}
			p.Builds = append(p.Builds, s.info(bi))
		}
		if w == last {
			return p
		}
		w++
		x = m.word(w)
	}
}

// CountBuilds returns how many builds f selects.
func (s *State) CountBuilds(f BuildFilter) int {
	if f.Node == "" {
		return s.countByCounters(f)
	}
	m := s.matcher(f)
	if m.none {
		return 0
	}
	n := 0
	for w := 0; 64*w < len(s.builds); w++ {
		n += bits.OnesCount64(m.word(w))
	}
	return n
}

// countByCounters counts from the per-system counters, without bitsets.
func (s *State) countByCounters(f BuildFilter) int {
	if f.System == "" && len(f.States) == 0 {
		return len(s.builds) - s.NumCompacted()
	}
	n := 0
	for sys, si := range s.ix.bySystem {
		if f.System != "" && s.names[sys] != f.System {
			continue
		}
		if len(f.States) == 0 {
			n += si.builds.count()
			continue
		}
		for _, st := range dedupStates(f.States) {
			n += si.counts[st]
		}
	}
	return n
}

func dedupStates(sts []BuildState) []BuildState {
	out := make([]BuildState, 0, len(sts))
	for _, st := range sts {
		if int(st) < numStates && !slices.Contains(out, st) {
			out = append(out, st)
		}
	}
	return out
}

// QueueCount is how many builds of one system are in one state.
type QueueCount struct {
	System string
	State  BuildState
	Builds int
}

// QueueCounts returns the number of builds per system and state, for every
// pair with at least one build, by system name then state. It is what the
// tbfg_builds metric exports, and costs the number of systems, not builds.
func (s *State) QueueCounts() []QueueCount {
	var out []QueueCount
	for sys, si := range s.ix.bySystem {
		for st, n := range si.counts {
			if n > 0 {
				out = append(out, QueueCount{System: s.names[sys], State: BuildState(st), Builds: n})
			}
		}
	}
	slices.SortFunc(out, func(a, b QueueCount) int {
		if c := strings.Compare(a.System, b.System); c != 0 {
			return c
		}
		return int(a.State) - int(b.State)
	})
	return out
}

// Systems returns every system some build is for, sorted.
func (s *State) Systems() []string {
	out := make([]string, 0, len(s.ix.bySystem))
	for sys := range s.ix.bySystem {
		out = append(out, s.names[sys])
	}
	slices.Sort(out)
	return out
}

// HourCount is how many builds ran and ended in one hour.
type HourCount struct {
	Hour      time.Time // start of the hour, UTC
	Succeeded int
	Failed    int
}

// FinishedPerHour returns the builds that ran and succeeded or failed in
// each of the n hours up to and including the one of now, oldest first. The
// state remembers 72 hours before its own clock.
func (s *State) FinishedPerHour(now time.Time, n int) []HourCount {
	n = min(max(n, 0), keepHours)
	out := make([]HourCount, n)
	last := now.UnixNano() / hourNs
	for i := range out {
		h := last - int64(n-1-i)
		out[i].Hour = time.Unix(0, h*hourNs).UTC()
		if c := s.ix.hours[h]; c != nil {
			out[i].Succeeded, out[i].Failed = c[0], c[1]
		}
	}
	return out
}

// RecentlyEnded returns up to limit builds that ran and ended, latest first.
func (s *State) RecentlyEnded(limit int) []BuildInfo {
	var out []BuildInfo
	for i := len(s.ix.recent) - 1; i >= 0 && len(out) < limit; i-- {
		out = append(out, s.info(s.ix.recent[i]))
	}
	return out
}

// Attempt is one allocation of a build to a node and how it ended.
type Attempt struct {
	Node      string
	Allocated time.Time
	Started   time.Time // zero if it never started
	Ended     time.Time // zero while it runs
	// State is what the build became: queued when a transient failure put
	// it back in the queue; allocated or running for the attempt under way.
	State   BuildState
	Reason  Reason
	Message string
}

// Attempts returns the attempts of build id, oldest first: the ones this
// state saw end and were then overwritten (a snapshot keeps only the
// latest), then the latest one from the build's record.
func (s *State) Attempts(id BuildID) []Attempt {
	bi, ok := s.buildIndex(id)
	if !ok {
		return nil
	}
	h := s.ix.history[bi]
	out := make([]Attempt, 0, len(h)+1)
	for _, a := range h {
		out = append(out, s.attemptInfo(a))
	}
	b := s.builds[bi]
	if b.allocated == 0 || len(h) > 0 && h[len(h)-1].allocated == b.allocated {
		return out
	}
	cur := attempt{node: b.last, allocated: b.allocated, started: b.started, state: b.state,
		reason: b.reason, message: b.message}
	if !ran(b.state) {
		cur.ended = b.finished
		if b.state == BuildQueued || b.state == BuildBlocked {
			cur.state = BuildQueued // waiting to be retried
		}
	}
	return append(out, s.attemptInfo(cur))
}

func (s *State) attemptInfo(a attempt) Attempt {
	out := Attempt{Allocated: nsTime(a.allocated), Started: nsTime(a.started), Ended: nsTime(a.ended),
		State: a.state, Reason: a.reason, Message: a.message}
	if a.node != 0 {
		out.Node = s.nodes[a.node-1].id
	}
	return out
}

// Blocked returns up to limit builds that failed because of build id
// (failed-dependency builds whose chain of causes leads to it), ascending,
// and how many there are, counting at most max.
func (s *State) Blocked(id BuildID, limit, max int) ([]BuildID, int) {
	bi, ok := s.buildIndex(id)
	if !ok {
		return nil, 0
	}
	var out []BuildID
	n := 0
	work := []uint32{bi}
	for len(work) > 0 && n < max {
		cur := work[len(work)-1]
		work = work[:len(work)-1]
		for _, di := range s.builds[cur].dependents {
			d := s.builds[di]
			if d == nil || d.state != BuildFailedDependency || d.cause != int32(cur) {
				continue
			}
			n++
			if len(out) < limit {
				out = append(out, BuildID(di+1))
			}
			work = append(work, di)
		}
	}
	slices.Sort(out)
	return out, min(n, max)
}

// Member returns one member by id.
func (s *State) Member(id string) (MemberInfo, bool) {
	n, ok := s.byNode[id]
	if !ok {
		return MemberInfo{}, false
	}
	return s.memberInfo(n), true
}

func (s *State) memberInfo(n uint16) MemberInfo {
	m := s.nodes[n]
	out := MemberInfo{ID: m.id, Key: m.key, NixKey: m.nixKey, MaxBuilds: m.maxBuilds, Active: m.active,
		Status: memberNames[m.status], Joined: nsTime(m.joined)}
	for _, v := range m.systems {
		out.Systems = append(out.Systems, s.names[v])
	}
	for _, v := range m.features {
		out.Features = append(out.Features, s.names[v])
	}
	return out
}
