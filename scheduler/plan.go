package scheduler

import (
	"fmt"
	"github.com/tbfg/tbfg-node/internal/bytesize"
	"slices"
	"time"
)

// NodeView is the leader's current view of one node's resources, fed by
// gossip. What a node can build (systems, features, max parallel builds) comes
// from its NodeJoined record in the state, so that Apply can verify a plan
// against the same facts; the view adds what changes from second to second.
type NodeView struct {
	ID        string
	Running   int     // builds it reports running (may include builds not yet recorded)
	Load1     float64 // one-minute load average
	Cores     int
	LoadLimit float64 // nothing is allocated while Load1 >= LoadLimit; 0 means no limit
	FreeDisk  uint64  // free bytes where its store lives
	// MinFree is the free store space below which the node takes no new
	// builds (its --min-free); 0 means no minimum.
	MinFree uint64
	Speed   float64 // relative speed, higher is faster; 0 counts as 1
}

// NoBuildsReason says why a node with this view takes no new builds, or ""
// if its view allows them (free slots and membership are the state's
// business): its store's disk is below its minimum free space, or its load
// is at its limit. Status pages and `tbfg-node nodes` show it.
func (v NodeView) NoBuildsReason(opts PlanOptions) string {
	if floor := max(v.MinFree, opts.MinFreeDisk); v.FreeDisk < floor {
		return fmt.Sprintf("disk: %s free < min-free %s", bytesize.IEC(v.FreeDisk), bytesize.IEC(floor))
	}
	if v.LoadLimit > 0 && v.Load1 >= v.LoadLimit {
		return fmt.Sprintf("load: %.2f >= max-load %.2f", v.Load1, v.LoadLimit)
	}
	return ""
}

// PlanOptions tunes an allocation round.
type PlanOptions struct {
	// MinFreeDisk is the free store space every node needs to get a build,
	// on top of each node's own NodeView.MinFree (the larger applies).
	MinFreeDisk uint64
	// MaxAllocations caps one round's plan; 0 means only node slots limit it.
	MaxAllocations int
	// SkipLimit is how many ready builds of one system may be passed over
	// (no node has their features) before the system is left for the next
	// round; 0 means 256.
	SkipLimit int
}

// candidate is a node that can take builds this round.
type candidate struct {
	node     uint16
	m        *member
	slots    int
	headroom float64 // 1 - load per core: idle cores
	speed    float64
	free     uint64 // free store space
}

// ready is a queued build whose inputs are all available.
type ready struct {
	prio int32
	idx  uint32
}

// before orders ready builds: highest priority, then oldest.
func (a ready) before(b ready) bool {
	return a.prio > b.prio || a.prio == b.prio && a.idx < b.idx
}

// systemQueue is one system's ready builds, a heap by before.
type systemQueue struct {
	heap   []ready
	placed int // allocations this round, for fairness between systems
	skips  int
}

// Plan computes one allocation round from the state and the node views: a
// pure function, run by the leader over a read-only state and checked again
// by Apply. Ready builds (queued, back-off over, every input available) go in
// order of priority, then age; systems take turns so one system's backlog
// cannot starve another's; each build goes to the best eligible node (most
// inputs already held, then most spare capacity, then fastest), never beyond
// a node's free slots.
func (s *State) Plan(views []NodeView, now time.Time, opts PlanOptions) []Allocation {
	cands, nodeCand := s.candidates(views, opts)
	if len(cands) == 0 {
		return nil
	}
	queues := s.readyBySystem(cands, now.UnixNano())
	skipLimit := opts.SkipLimit
	if skipLimit <= 0 {
		skipLimit = 256
	}
	var order []uint32 // systems with ready builds, ascending
	for sys, q := range queues {
		if q != nil {
			order = append(order, uint32(sys))
		}
	}
	var plan []Allocation
	local := make([]int, len(cands))
	for len(order) > 0 && (opts.MaxAllocations <= 0 || len(plan) < opts.MaxAllocations) {
		i := s.nextSystem(order, queues)
		sys := order[i]
		q := queues[sys]
		r := popReady(&q.heap)
		if c := s.choose(s.builds[r.idx], cands, nodeCand, local); c >= 0 {
			cands[c].slots--
			q.placed++
			plan = append(plan, Allocation{Build: BuildID(r.idx + 1), Node: cands[c].m.id})
		} else {
			q.skips++
		}
		if len(q.heap) == 0 || q.skips > skipLimit || !hasSlots(cands, sys) {
			order = slices.Delete(order, i, i+1)
		}
	}
	return plan
}

// candidates filters the views down to active members with free slots, load
// below their limit and enough disk. nodeCand maps node index to candidate
// index (-1 if none).
func (s *State) candidates(views []NodeView, opts PlanOptions) ([]candidate, []int) {
	views = slices.Clone(views)
	slices.SortFunc(views, func(a, b NodeView) int { return cmpString(a.ID, b.ID) })
	nodeCand := make([]int, len(s.nodes))
	for i := range nodeCand {
		nodeCand[i] = -1
	}
	var cands []candidate
	for _, v := range views {
		n, ok := s.byNode[v.ID]
		if !ok || nodeCand[n] >= 0 {
			continue
		}
		m := s.nodes[n]
		slots := m.maxBuilds - max(m.active, v.Running)
		if m.status != memberActive || slots <= 0 || v.NoBuildsReason(opts) != "" {
			continue
		}
		speed := v.Speed
		if speed <= 0 {
			speed = 1
		}
		headroom := 0.0
		if v.Cores > 0 {
			headroom = 1 - v.Load1/float64(v.Cores)
		}
		nodeCand[n] = len(cands)
		cands = append(cands, candidate{node: n, m: m, slots: slots, headroom: headroom, speed: speed, free: v.FreeDisk})
	}
	return cands, nodeCand
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// readyBySystem collects the ready builds of systems some candidate builds.
// The result is indexed by system name index; nil where none is ready.
func (s *State) readyBySystem(cands []candidate, now int64) []*systemQueue {
	wanted := make([]bool, len(s.names))
	for _, c := range cands {
		for _, sys := range c.m.systems {
			wanted[sys] = true
		}
	}
	queues := make([]*systemQueue, len(s.names))
	for bi, b := range s.builds {
		if b == nil || b.state != BuildQueued || b.notBefore > now || !wanted[b.system] || !s.inputsAvailable(b) {
			continue
		}
		q := queues[b.system]
		if q == nil {
			q = &systemQueue{}
			queues[b.system] = q
		}
		q.heap = append(q.heap, ready{prio: b.priority, idx: uint32(bi)})
	}
	for _, q := range queues {
		if q != nil {
			initHeap(q.heap)
		}
	}
	return queues
}

// nextSystem picks whose turn it is: the highest head priority; among equal
// priorities the system placed least this round, then the oldest head.
func (s *State) nextSystem(order []uint32, queues []*systemQueue) int {
	best := 0
	for i := 1; i < len(order); i++ {
		a, b := queues[order[i]], queues[order[best]]
		ha, hb := a.heap[0], b.heap[0]
		switch {
		case ha.prio != hb.prio:
			if ha.prio > hb.prio {
				best = i
			}
		case a.placed != b.placed:
			if a.placed < b.placed {
				best = i
			}
		case ha.idx < hb.idx:
			best = i
		}
	}
	return best
}

// hasSlots reports whether a candidate building sys has a free slot.
func hasSlots(cands []candidate, sys uint32) bool {
	for _, c := range cands {
		if c.slots > 0 && containsSorted(c.m.systems, sys) {
			return true
		}
	}
	return false
}

// choose returns the best candidate for b, or -1: filter (free slot, system,
// features), then rank (inputs and .drv held locally, spare capacity, speed,
// free store space, then node order for determinism). local is scratch space.
func (s *State) choose(b *build, cands []candidate, nodeCand []int, local []int) int {
	clear(local)
	count := func(p uint32) {
		for _, h := range s.paths[p].holders {
			if c := nodeCand[h]; c >= 0 {
				local[c]++
			}
		}
	}
	for _, p := range b.inputs {
		count(p)
	}
	// The .drv file is fetched like an input: a node that holds it (the
	// submitter) fetches nothing for a build whose inputs it also holds.
	if p, ok := s.byPath[b.drv]; ok {
		count(p)
	}
	feats := s.featureSets[b.features]
	best := -1
	for i := range cands {
		c := &cands[i]
		if c.slots <= 0 || !containsSorted(c.m.systems, b.system) || !subsetSorted(feats, c.m.features) {
			continue
		}
		if best < 0 || better(c, &cands[best], local[i], local[best]) {
			best = i
		}
	}
	return best
}

// better ranks candidate a above b: more inputs held locally, then more
// spare capacity (free slots, then idle cores), then faster, then more free
// store space.
func better(a, b *candidate, localA, localB int) bool {
	if localA != localB {
		return localA > localB
	}
	spareA := float64(a.slots) / float64(a.m.maxBuilds)
	spareB := float64(b.slots) / float64(b.m.maxBuilds)
	if spareA != spareB {
		return spareA > spareB
	}
	if a.headroom != b.headroom {
		return a.headroom > b.headroom
	}
	if a.speed != b.speed {
		return a.speed > b.speed
	}
	return a.free > b.free
}

// initHeap, popReady: a binary heap of ready builds ordered by before.
func initHeap(h []ready) {
	for i := len(h)/2 - 1; i >= 0; i-- {
		siftDown(h, i)
	}
}

func popReady(h *[]ready) ready {
	old := *h
	top := old[0]
	last := len(old) - 1
	old[0] = old[last]
	*h = old[:last]
	siftDown(*h, 0)
	return top
}

func siftDown(h []ready, i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h[r].before(h[l]) {
			m = r
		}
		if !h[m].before(h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}
