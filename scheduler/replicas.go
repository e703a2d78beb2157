package scheduler

// UnderReplicated lists store items that are available (an active member
// holds them) but held by fewer than copies active members: what the nodes'
// replicators copy to more holders, so that an item survives the loss of
// the node that built it. Items are listed in the order the state first
// learned of their paths, the same on every node, up to limit of them (all
// if limit <= 0). keep, when not nil, sees each candidate (under the read
// lock) and leaves out those for which it returns false, before limit
// counts them, so a caller can skip what another node copies. copies <= 1
// lists nothing. One call costs one pass over the state's paths.
func (s *State) UnderReplicated(copies, limit int, keep func(ItemInfo) bool) []ItemInfo {
	if copies <= 1 {
		return nil
	}
	var out []ItemInfo
	for p := range s.paths {
		if s.paths[p].info == nil {
			continue
		}
		if n := s.activeHolders(uint32(p), copies); n == 0 || n >= copies {
			continue
		}
		it := s.itemInfo(uint32(p))
		if keep != nil && !keep(it) {
			continue
		}
		out = append(out, it)
		if limit > 0 && len(out) == limit {
			break
		}
	}
	return out
}

// activeHolders counts the active members holding path p, stopping at upTo.
func (s *State) activeHolders(p uint32, upTo int) int {
	n := 0
	for _, h := range s.paths[p].holders {
		if s.nodes[h].status == memberActive {
			if n++; n == upTo {
				break
			}
		}
	}
	return n
}
