package gc

import (
	"cmp"
	"hash/fnv"
	"slices"
	"time"
)

// Class is why an item may go, in the order the collector prefers.
type Class int

// The classes of removable items, first to go first.
const (
	// ClassFetched is an item this node holds without being recorded as a
	// holder: an input fetched for a build, a copy whose removal was
	// committed before a crash, a leftover.
	ClassFetched Class = iota
	// ClassReplica is a copy made for replication, held by more members
	// than --replicas.
	ClassReplica
	// ClassBuilt is an output this node built, held by more members than
	// --replicas.
	ClassBuilt
)

var classNames = [...]string{"fetched", "replica", "built"}

// String names the class as `tbfg-node gc` prints it.
func (c Class) String() string {
	if c >= 0 && int(c) < len(classNames) {
		return classNames[c]
	}
	return "unknown"
}

// Candidate is one valid item of the local store with what the replicated
// state says of it.
type Candidate struct {
	Path string
	// Size is its NAR size in bytes.
	Size int64
	// References are the store paths it refers to.
	References []string
	// LastUsed is when it was last built, fetched or served here.
	LastUsed time.Time
	// Holders are the active members the state records as holding it;
	// this node is among them when it is recorded as a holder.
	Holders []string
	// Needed is set when an unfinished build needs it (see
	// scheduler.Holding).
	Needed bool
	// Built is set when this node built it.
	Built bool
}

// Limits are what a choice must respect and achieve.
type Limits struct {
	// Node is this node's ID, as the state names members.
	Node string
	// Replicas is how many active members must keep holding each item.
	Replicas int
	// Free is how many bytes to free; the choice stops once the items it
	// picked add up to it, or when nothing more may go.
	Free int64
	// UsedBefore keeps every item used at or after it: items just fetched
	// or imported may not be recorded yet (a replica copy before its
	// HolderAdded, a submitted .drv before its Submit).
	UsedBefore time.Time
}

// Removal is one item chosen to go.
type Removal struct {
	Path  string
	Size  int64
	Class Class
	// Recorded is set when this node is recorded as a holder: the
	// collector commits HolderRemoved before the files go.
	Recorded bool
}

// Choose picks the items to remove from the local store, in the order to
// remove them: fetched items first, then replica copies, then outputs this
// node built, each least recently used first. It never picks an item that
// an unfinished build needs, one used at or after lim.UsedBefore, one whose
// removal would leave fewer than lim.Replicas active holders, nor one that
// an item which stays refers to (every removal comes after those of its
// referrers). Several holders choosing from the same state never together
// drop an item below lim.Replicas: of an item's holders only those outside
// its first lim.Replicas in rendezvous order of (path, member) may let it
// go. It is a pure function of its arguments.
func Choose(items []Candidate, lim Limits) []Removal {
	if lim.Free <= 0 {
		return nil
	}
	byPath := make(map[string]*Candidate, len(items))
	for i := range items {
		byPath[items[i].Path] = &items[i]
	}
	eligible := map[string]Removal{}
	var order []Removal
	for i := range items {
		if r, ok := classify(&items[i], lim); ok {
			eligible[r.Path] = r
			order = append(order, r)
		}
	}
	slices.SortFunc(order, func(a, b Removal) int {
		return cmp.Or(cmp.Compare(a.Class, b.Class),
			byPath[a.Path].LastUsed.Compare(byPath[b.Path].LastUsed), cmp.Compare(a.Path, b.Path))
	})
	return pickFreeable(order, referrers(items), lim.Free)
}

// classify says whether c may go, and as what.
func classify(c *Candidate, lim Limits) (Removal, bool) {
	r := Removal{Path: c.Path, Size: c.Size, Recorded: slices.Contains(c.Holders, lim.Node)}
	if c.Needed || !c.LastUsed.Before(lim.UsedBefore) {
		return r, false
	}
	switch {
	case !r.Recorded:
		r.Class = ClassFetched
	case len(c.Holders) <= lim.Replicas || keeper(c.Path, c.Holders, lim.Node, lim.Replicas):
		return r, false
	case c.Built:
		r.Class = ClassBuilt
	default:
		r.Class = ClassReplica
	}
	return r, true
}

// referrers maps each local item to the other local items that refer to it.
func referrers(items []Candidate) map[string][]string {
	out := map[string][]string{}
	for _, c := range items {
		for _, r := range c.References {
			if r != c.Path {
				out[r] = append(out[r], c.Path)
			}
		}
	}
	return out
}

// pickFreeable takes items from order until they add up to free, taking
// an item only once every local item that refers to it is taken: a pass
// over what is left, again after each pass that took something, so that
// an item whose referrers come later in order follows them.
func pickFreeable(order []Removal, refs map[string][]string, free int64) []Removal {
	taken := map[string]bool{}
	var out []Removal
	var freed int64
	for progress := true; progress && freed < free; {
		progress = false
		for _, r := range order {
			if taken[r.Path] || !allTaken(refs[r.Path], taken) {
				continue
			}
			taken[r.Path], progress = true, true
			out = append(out, r)
			if freed += r.Size; freed >= free {
				break
			}
		}
	}
	return out
}

func allTaken(paths []string, taken map[string]bool) bool {
	for _, p := range paths {
		if !taken[p] {
			return false
		}
	}
	return true
}

// keeper reports whether node is among the first replicas holders of path
// in rendezvous order: those keep their copy, so that holders choosing
// at the same time from the same state leave at least replicas of them.
func keeper(path string, holders []string, node string, replicas int) bool {
	mine := rank(path, node)
	better := 0
	for _, h := range holders {
		if h == node {
			continue
		}
		if r := rank(path, h); r > mine || r == mine && h < node {
			better++
		}
	}
	return better < replicas
}

// rank is the rendezvous weight of member for path: the same in every
// process and version.
func rank(path, member string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(path))
	h.Write([]byte{0})
	h.Write([]byte(member))
	x := h.Sum64()
	// SplitMix64's finaliser spreads FNV's weak low bits.
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}
