package gc

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// randomStore makes n local items of node "n0" in a mesh of members, with
// random holders, needs, uses and references to earlier items.
func randomStore(rng *rand.Rand, n int, members []string) []Candidate {
	items := make([]Candidate, n)
	for i := range items {
		c := Candidate{Path: fmt.Sprintf("/gnu/store/%032d-item", i), Size: 1 + rng.Int64N(1000),
			LastUsed: t0.Add(time.Duration(rng.IntN(100)) * time.Minute), Needed: rng.IntN(5) == 0,
			Built: rng.IntN(3) == 0}
		for _, m := range members {
			if rng.IntN(2) == 0 {
				c.Holders = append(c.Holders, m)
			}
		}
		for j := 0; j < i && rng.IntN(3) == 0; j++ {
			c.References = append(c.References, items[rng.IntN(i)].Path)
		}
		items[i] = c
	}
	return items
}

// TestChooseProperties checks, for random states, holders and limits, that
// Choose never picks an item that is needed or too recently used, never
// leaves an item with fewer than Replicas holders even when every holder
// chooses from the same state at once, never removes an item before an
// item that refers to it, and frees what it was asked when it stops short
// only for lack of removable items.
func TestChooseProperties(t *testing.T) {
	members := []string{"n0", "n1", "n2", "n3", "n4"}
	for seed := range uint64(500) {
		rng := rand.New(rand.NewPCG(seed, 1))
		items := randomStore(rng, 1+rng.IntN(40), members)
		lim := Limits{Replicas: 1 + rng.IntN(3), Free: rng.Int64N(20000),
			UsedBefore: t0.Add(time.Duration(rng.IntN(120)) * time.Minute)}
		removed := map[string]int{} // path → holders that let it go
		for _, m := range members {
			lim.Node = m
			got := Choose(items, lim)
			if err := checkChoice(items, lim, got); err != nil {
				t.Fatalf("seed %d, node %s: %v", seed, m, err)
			}
			for _, r := range got {
				if r.Recorded {
					removed[r.Path]++
				}
			}
		}
		for _, c := range items {
			if left := len(c.Holders) - removed[c.Path]; removed[c.Path] > 0 && left < lim.Replicas {
				t.Fatalf("seed %d: %s: %d holders, all choosing at once leave %d, want at least %d",
					seed, c.Path, len(c.Holders), left, lim.Replicas)
			}
		}
	}
}

// checkChoice checks one node's choice against the rules.
func checkChoice(items []Candidate, lim Limits, got []Removal) error {
	byPath := map[string]Candidate{}
	for _, c := range items {
		byPath[c.Path] = c
	}
	pos := map[string]int{}
	var freed int64
	for i, r := range got {
		c := byPath[r.Path]
		switch {
		case c.Needed:
			return fmt.Errorf("picked %s, which a build needs", r.Path)
		case !c.LastUsed.Before(lim.UsedBefore):
			return fmt.Errorf("picked %s, used within the grace period", r.Path)
		case r.Recorded != slices.Contains(c.Holders, lim.Node):
			return fmt.Errorf("%s: recorded %v, holders %v", r.Path, r.Recorded, c.Holders)
		case r.Recorded && len(c.Holders)-1 < lim.Replicas:
			return fmt.Errorf("picked %s: %d holders, replicas %d", r.Path, len(c.Holders), lim.Replicas)
		}
		if _, dup := pos[r.Path]; dup {
			return fmt.Errorf("picked %s twice", r.Path)
		}
		pos[r.Path] = i
		freed += r.Size
	}
	for _, c := range items {
		for _, ref := range c.References {
			if ref == c.Path {
				continue
			}
			if i, ok := pos[ref]; ok {
				if j, ok := pos[c.Path]; !ok || j > i {
					return fmt.Errorf("picked %s while %s, which refers to it, stays or goes later", ref, c.Path)
				}
			}
		}
	}
	if freed < lim.Free && len(got) < removable(items, lim) {
		return fmt.Errorf("freed %d of %d with %d of %d removable items picked", freed, lim.Free, len(got), removable(items, lim))
	}
	return nil
}

// removable counts the items Choose could remove given enough to free.
func removable(items []Candidate, lim Limits) int {
	lim.Free = 1 << 62
	return len(Choose(items, lim))
}

// TestChooseOrder checks the order of the classes and of last uses.
func TestChooseOrder(t *testing.T) {
	old := t0.Add(-time.Hour)
	items := []Candidate{
		{Path: "/gnu/store/a-built", Size: 10, LastUsed: old.Add(-time.Hour), Holders: []string{"me", "x", "y"}, Built: true},
		{Path: "/gnu/store/b-replica", Size: 10, LastUsed: old, Holders: []string{"me", "x", "y"}},
		{Path: "/gnu/store/c-fetched-new", Size: 10, LastUsed: old.Add(time.Minute)},
		{Path: "/gnu/store/d-fetched-old", Size: 10, LastUsed: old},
		{Path: "/gnu/store/e-needed", Size: 10, LastUsed: old, Needed: true},
		{Path: "/gnu/store/f-fresh", Size: 10, LastUsed: t0},
		{Path: "/gnu/store/g-last-copies", Size: 10, LastUsed: old, Holders: []string{"me", "x"}},
	}
	// With three holders and one replica, "me" may go unless it ranks first.
	lim := Limits{Node: "me", Replicas: 1, Free: 1000, UsedBefore: t0}
	var got []string
	for _, r := range Choose(items, lim) {
		got = append(got, r.Class.String()+" "+r.Path)
	}
	want := []string{"fetched /gnu/store/d-fetched-old", "fetched /gnu/store/c-fetched-new"}
	if !keeper("/gnu/store/b-replica", items[1].Holders, "me", 1) {
		want = append(want, "replica /gnu/store/b-replica")
	}
	if !keeper("/gnu/store/g-last-copies", items[6].Holders, "me", 1) {
		want = append(want, "replica /gnu/store/g-last-copies")
	}
	if !keeper("/gnu/store/a-built", items[0].Holders, "me", 1) {
		want = append(want, "built /gnu/store/a-built")
	}
	if !slices.Equal(got, want) {
		t.Errorf("Choose:\n got %q\nwant %q", got, want)
	}
	lim.Free = 15
	if got := Choose(items, lim); len(got) != 2 {
		t.Errorf("Choose to free 15 bytes of 10-byte items picked %d, want 2", len(got))
	}
}
