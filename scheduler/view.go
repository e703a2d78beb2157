package scheduler

import "time"

// BuildInfo is a copy of one build's record, for status pages, the CLI and the
// agent loop.
type BuildInfo struct {
	ID        BuildID
	Drv       string
	System    string
	Outputs   []Output
	Inputs    []string // store paths: outputs of input derivations, then sources
	Features  []string
	Priority  int32
	Submitter string
	Tags      []Tag
	State     BuildState
	Reason    Reason // why it last failed, also while re-queued after a transient failure
	Message   string
	Attempt   int    // allocations since it was last queued by a user
	Node      string // allocated node, while allocated or running
	LastNode  string // node of the latest allocation, also after the build ended; "" if never allocated
	Cause     BuildID
	Submitted time.Time
	Allocated time.Time
	Started   time.Time
	Finished  time.Time
	NotBefore time.Time // not allocated before this (back-off)
}

// ItemInfo is a store item's narinfo fields and the nodes that hold it.
type ItemInfo struct {
	Item
	Holders   []string // active members holding it, in join order
	Available bool
}

// MemberInfo is one node as the replicated state knows it.
type MemberInfo struct {
	ID        string
	Key       string // signing public key
	NixKey    string // Nix public key (name:base64), "" if it registered none
	Systems   []string
	Features  []string
	MaxBuilds int
	Active    int    // builds allocated or running on it
	Status    string // "active", "lost" or "left"
	Joined    time.Time
}

func nsTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// info copies build bi out of the state.
func (s *State) info(bi uint32) BuildInfo {
	b := s.builds[bi]
	sub := s.submissions[b.submission]
	bi2 := BuildInfo{ID: BuildID(bi + 1), Drv: b.drv, System: s.names[b.system], Priority: b.priority,
		Submitter: sub.submitter, Tags: sub.tags, State: b.state, Reason: b.reason, Message: b.message,
		Attempt: int(b.attempt), Submitted: nsTime(b.submitted), Allocated: nsTime(b.allocated),
		Started: nsTime(b.started), Finished: nsTime(b.finished), NotBefore: nsTime(b.notBefore)}
	for _, o := range b.outputs {
		bi2.Outputs = append(bi2.Outputs, Output{Name: s.names[o.name], Path: s.paths[o.path].path})
	}
	for _, p := range b.inputs {
		bi2.Inputs = append(bi2.Inputs, s.paths[p].path)
	}
	for _, f := range s.featureSets[b.features] {
		bi2.Features = append(bi2.Features, s.names[f])
	}
	if b.node != 0 {
		bi2.Node = s.nodes[b.node-1].id
	}
	if b.last != 0 {
		bi2.LastNode = s.nodes[b.last-1].id
	}
	if b.cause >= 0 {
		bi2.Cause = BuildID(b.cause + 1)
	}
	return bi2
}

// Build returns a build by id.
func (s *State) Build(id BuildID) (BuildInfo, bool) {
	bi, ok := s.buildIndex(id)
	if !ok {
		return BuildInfo{}, false
	}
	return s.info(bi), true
}

// BuildByDrv returns the build of a derivation.
func (s *State) BuildByDrv(drv string) (BuildInfo, bool) {
	bi, ok := s.byDrv[drv]
	if !ok {
		return BuildInfo{}, false
	}
	return s.info(bi), true
}

// NumBuilds is the number of builds; ids run from 1 to NumBuilds.
func (s *State) NumBuilds() int { return len(s.builds) }

// Builds returns up to limit builds (all if limit <= 0) for which keep
// returns true, in id order starting after id after. keep sees only the
// state, so filtering is cheap.
func (s *State) Builds(after BuildID, limit int, keep func(BuildState) bool) []BuildInfo {
	var out []BuildInfo
	for bi := uint32(min(after, BuildID(len(s.builds)))); int(bi) < len(s.builds); bi++ {
		if b := s.builds[bi]; b == nil || keep != nil && !keep(b.state) {
			continue
		}
		out = append(out, s.info(bi))
		if limit > 0 && len(out) == limit {
			break
		}
	}
	return out
}

// Counts returns how many builds are in each state.
func (s *State) Counts() map[BuildState]int {
	out := map[BuildState]int{}
	for _, b := range s.builds {
		if b != nil {
			out[b.state]++
		}
	}
	return out
}

// NodeBuilds returns the builds allocated to or running on node, in id
// order: what its agent must run.
func (s *State) NodeBuilds(node string) []BuildInfo {
	n, ok := s.byNode[node]
	if !ok {
		return nil
	}
	var out []BuildInfo
	for bi, b := range s.builds {
		if b != nil && b.node == n+1 {
			out = append(out, s.info(uint32(bi)))
		}
	}
	return out
}

// Item returns a store item's record by path.
func (s *State) Item(path string) (ItemInfo, bool) {
	p, ok := s.byPath[path]
	if !ok || s.paths[p].info == nil {
		return ItemInfo{}, false
	}
	return s.itemInfo(p), true
}

// ItemByHash returns a held store item by the hash part of its path, as in a
// /<hash>.narinfo request.
func (s *State) ItemByHash(hash string) (ItemInfo, bool) {
	p, ok := s.byHash[hash]
	if !ok {
		return ItemInfo{}, false
	}
	return s.itemInfo(p), true
}

func (s *State) itemInfo(p uint32) ItemInfo {
	e := &s.paths[p]
	out := ItemInfo{Item: *e.info, Available: s.available(p)}
	for _, h := range e.holders {
		if s.nodes[h].status == memberActive {
			out.Holders = append(out.Holders, s.nodes[h].id)
		}
	}
	return out
}

// Members lists every node that ever joined, in join order.
func (s *State) Members() []MemberInfo {
	out := make([]MemberInfo, len(s.nodes))
	for i := range s.nodes {
		out[i] = s.memberInfo(uint16(i))
	}
	return out
}
