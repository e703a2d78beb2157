package replicate

import (
	"slices"
	"strings"
)

// Targets returns the members that should take a copy of path so that it is
// held copies times: the first copies−len(holders) members of active that
// are not holders, in rendezvous order for path (best first). Every node
// computes the same answer from the same state. It returns nil when path
// has enough holders or no other member can take it.
func Targets(path string, active, holders []string, copies int) []string {
	need := copies - len(holders)
	if need <= 0 {
		return nil
	}
	rk := newRanking(active)
	ph := hashString(path)
	var out []string
	for _, m := range rk.members {
		if !slices.Contains(holders, m) {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b string) int {
		if rk.better(ph, a, b) {
			return -1
		}
		if rk.better(ph, b, a) {
			return 1
		}
		return 0
	})
	return out[:min(need, len(out))]
}

// ranking is the active members of one scan with their hashes computed
// once, so that ranking an item costs one multiply-and-mix per member.
type ranking struct {
	members []string
	hashes  map[string]uint64
}

func newRanking(members []string) ranking {
	rk := ranking{members: members, hashes: make(map[string]uint64, len(members))}
	for _, m := range members {
		rk.hashes[m] = hashString(m)
	}
	return rk
}

// position returns how many candidates for a copy of the item at path
// with these holders rank before self, counting no further than limit, or
// -1 if self is no candidate: it holds a copy or is not an active member.
// Self is among the first k candidates when 0 <= position < k.
func (rk ranking) position(self, path string, holders []string, limit int) int {
	if slices.Contains(holders, self) {
		return -1
	}
	if _, ok := rk.hashes[self]; !ok {
		return -1 // not an active member: not a candidate
	}
	ph := hashString(path)
	before := 0
	for _, m := range rk.members {
		if m != self && !slices.Contains(holders, m) && rk.better(ph, m, self) {
			if before++; before >= limit {
				break
			}
		}
	}
	return before
}

// better reports whether member a ranks before member b for the path whose
// hash is ph: a higher score, ties broken by the smaller ID.
func (rk ranking) better(ph uint64, a, b string) bool {
	sa, sb := score(ph, rk.hashes[a]), score(ph, rk.hashes[b])
	if sa != sb {
		return sa > sb
	}
	return strings.Compare(a, b) < 0
}

// score is the rendezvous weight of a member for a path.
func score(pathHash, memberHash uint64) uint64 { return mix(pathHash ^ mix(memberHash)) }

// hashString is 64-bit FNV-1a: stable across processes and versions, which
// a rendezvous ranking needs (hash/maphash is seeded per process).
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * 1099511628211
	}
	return h
}

// mix is the SplitMix64 finaliser: it spreads FNV's weak low bits so that
// similar paths and IDs get unrelated scores.
func mix(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}
