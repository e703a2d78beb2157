package scheduler

import (
	"slices"
	"testing"
	"time"
)

// TestHoldings checks what a node's store collector learns of paths: the
// active holders, whether an unfinished build needs a path (its .drv, an
// input or an output) and whether the node asking built it.
func TestHoldings(t *testing.T) {
	s := NewState()
	const sys = "x86_64-linux"
	mustApply(t, s, joined("a", 1, sys))
	mustApply(t, s, joined("b", 1, sys))
	leaf, top := drv("leaf", sys), drv("top", sys, "leaf")
	mustApply(t, s, &Submit{Time: at(time.Second), Node: "a", Derivations: []Derivation{leaf, top},
		Items: []Item{item(leaf.Path), item(top.Path)}})
	mustApply(t, s, &Allocate{Time: at(2 * time.Second), Allocations: []Allocation{{Build: 1, Node: "a"}}})
	mustApply(t, s, &Succeeded{Time: at(3 * time.Second), Build: 1, Node: "a", Outputs: []Item{item(outPath("leaf"))}})
	mustApply(t, s, &HolderAdded{Time: at(4 * time.Second), Node: "b", Items: []Item{item(outPath("leaf"))}})
	paths := []string{outPath("leaf"), leaf.Path, top.Path, outPath("top"), "/gnu/store/00000000000000000000000000000000-unknown"}
	got := s.Holdings("a", paths)
	want := []Holding{
		{Path: outPath("leaf"), Holders: []string{"a", "b"}, Needed: true, Built: true}, // an input of top
		{Path: leaf.Path, Holders: []string{"a"}},                                       // leaf is done
		{Path: top.Path, Holders: []string{"a"}, Needed: true},                          // top is queued
		{Path: outPath("top"), Needed: true},                                            // to be published
		{Path: paths[4]},
	}
	for i := range want {
		if g, w := got[i], want[i]; g.Path != w.Path || !slices.Equal(g.Holders, w.Holders) || g.Needed != w.Needed || g.Built != w.Built {
			t.Errorf("Holdings[%d] = %+v, want %+v", i, g, w)
		}
	}
	mustApply(t, s, &Cancel{Time: at(5 * time.Second), Builds: []BuildID{2}})
	if h := s.Holdings("b", paths[:1])[0]; h.Needed || h.Built {
		t.Errorf("after top is canceled, %s for b: %+v; want neither needed nor built by b", paths[0], h)
	}
}
