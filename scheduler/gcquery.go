package scheduler

// Holding is what the replicated state says of one store path, for a
// node's store collector: who holds it, whether an unfinished build needs
// it, and whether the node asking built it.
type Holding struct {
	// Path is the store path asked about.
	Path string
	// Holders are the active members recorded as holding it, in join order.
	Holders []string
	// Needed is set when a build that is not done (queued, allocated,
	// running or blocked) has it as its .drv, an input or an output: an
	// output of an unfinished build may be on its way to being published.
	Needed bool
	// Built is set when the node asked about is the one that built it:
	// the latest allocation of its producing build, which succeeded.
	Built bool
}

// Holdings answers, for each of paths in order, who holds it, whether an
// unfinished build needs it and whether node built it. It costs one pass
// over the builds that are not done plus a lookup per path.
func (s *State) Holdings(node string, paths []string) []Holding {
	needed := s.neededPaths()
	self, known := s.byNode[node]
	out := make([]Holding, len(paths))
	for i, path := range paths {
		h := Holding{Path: path}
		if p, ok := s.byPath[path]; ok {
			h.Needed = needed[p]
			for _, n := range s.paths[p].holders {
				if s.nodes[n].status == memberActive {
					h.Holders = append(h.Holders, s.nodes[n].id)
				}
			}
			if pr := s.paths[p].producer; known && pr != noProducer {
				b := s.builds[pr]
				h.Built = b.state == BuildSucceeded && b.last == self+1
			}
		}
		if _, ok := s.byDrv[path]; ok && !h.Needed {
			h.Needed = !s.builds[s.byDrv[path]].state.Done()
		}
		out[i] = h
	}
	return out
}

// neededPaths is the set of paths (indices) that builds not done use as
// inputs or produce as outputs.
func (s *State) neededPaths() map[uint32]bool {
	needed := map[uint32]bool{}
	for _, b := range s.builds {
		if b.state.Done() {
			continue
		}
		for _, p := range b.inputs {
			needed[p] = true
		}
		for _, o := range b.outputs {
			needed[o.path] = true
		}
	}
	return needed
}
