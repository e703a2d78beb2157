package scheduler

import (
	"slices"
	"testing"
	"time"
)

// replicaState has members n1, n2, n3 and items a (held by n1), b (n1, n2),
// c (n1, n2, n3), d (n2), e (n3), f (n3 then also n1), recorded in that
// order.
func replicaState(t *testing.T) *State {
	t.Helper()
	s := NewState()
	for _, n := range []string{"n1", "n2", "n3"} {
		mustApply(t, s, joined(n, 1, "x86_64-linux"))
	}
	hold := func(node string, names ...string) {
		var items []Item
		for _, n := range names {
			items = append(items, item(outPath(n)))
		}
		mustApply(t, s, &HolderAdded{Time: t0, Node: node, Items: items})
	}
	hold("n1", "a", "b", "c")
	hold("n2", "b", "c", "d")
	hold("n3", "c", "e", "f")
	hold("n1", "f")
	return s
}

func TestUnderReplicated(t *testing.T) {
	for _, tc := range []struct {
		name   string
		edit   func(t *testing.T, s *State)
		copies int
		limit  int
		keep   func(ItemInfo) bool
		want   []string
	}{
		{name: "two copies", copies: 2, want: []string{"a", "d", "e"}},
		{name: "three copies", copies: 3, want: []string{"a", "b", "d", "e", "f"}},
		{name: "one copy disables", copies: 1},
		{name: "zero copies disables", copies: 0},
		{name: "limit", copies: 3, limit: 2, want: []string{"a", "b"}},
		{name: "keep before limit", copies: 3, limit: 2,
			keep: func(it ItemInfo) bool { return !slices.Contains(it.Holders, "n1") }, want: []string{"d", "e"}},
		{name: "lost holder does not count", copies: 2,
			edit: func(t *testing.T, s *State) { mustApply(t, s, &NodeLost{Time: t0, Node: "n3"}) },
			// e is nowhere now: nothing can copy it.
			want: []string{"a", "d", "f"}},
		{name: "left holder does not count", copies: 2,
			edit: func(t *testing.T, s *State) { mustApply(t, s, &NodeLeft{Time: t0, Node: "n2"}) },
			want: []string{"a", "b", "e"}},
		{name: "back after loss", copies: 2,
			edit: func(t *testing.T, s *State) {
				mustApply(t, s, &NodeLost{Time: t0, Node: "n3"})
				mustApply(t, s, joined("n3", 1, "x86_64-linux"))
			},
			want: []string{"a", "d", "e"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := replicaState(t)
			if tc.edit != nil {
				tc.edit(t, s)
			}
			var got []string
			for _, it := range s.UnderReplicated(tc.copies, tc.limit, tc.keep) {
				if !it.Available || len(it.Holders) == 0 || len(it.Holders) >= tc.copies {
					t.Errorf("%s listed with holders %v, available %v", it.Path, it.Holders, it.Available)
				}
				if it.Narinfo == "" || it.NarHash == "" {
					t.Errorf("%s listed without its record: %+v", it.Path, it.Item)
				}
				got = append(got, it.Path)
			}
			var want []string
			for _, n := range tc.want {
				want = append(want, outPath(n))
			}
			if !slices.Equal(got, want) {
				t.Errorf("UnderReplicated(%d, %d) = %v, want %v", tc.copies, tc.limit, got, want)
			}
		})
	}
}

// TestUnderReplicatedSameOnReplicas checks that a state restored from a
// snapshot lists the same items in the same order.
func TestUnderReplicatedSameOnReplicas(t *testing.T) {
	s := replicaState(t)
	r, err := UnmarshalState(encodeState(t, s))
	if err != nil {
		t.Fatal(err)
	}
	paths := func(its []ItemInfo) []string {
		var out []string
		for _, it := range its {
			out = append(out, it.Path)
		}
		return out
	}
	if a, b := paths(s.UnderReplicated(3, 0, nil)), paths(r.UnderReplicated(3, 0, nil)); !slices.Equal(a, b) {
		t.Errorf("restored state lists %v, original %v", b, a)
	}
}

// BenchmarkUnderReplicated100k scans a state of 100,000 builds whose sources
// and a fifth of whose outputs have one holder, keeping none of them (a
// replicator is the target of few items), next to one pass of Counts over
// the builds in the same run as the reference (x-faster-than-counts: its
// time over the scan's).
func BenchmarkUnderReplicated100k(b *testing.B) {
	s := bigState(b, 100000)
	listed := 0
	s.UnderReplicated(2, 0, func(ItemInfo) bool { listed++; return false })
	b.ResetTimer()
	var scan, ref time.Duration
	for range b.N {
		start := time.Now()
		s.UnderReplicated(2, 0, func(ItemInfo) bool { return false })
		scan += time.Since(start)
		start = time.Now()
		s.Counts()
		ref += time.Since(start)
	}
	b.ReportMetric(scan.Seconds()*1e3/float64(b.N), "ms/scan")
	b.ReportMetric(ref.Seconds()/scan.Seconds(), "x-faster-than-counts")
	b.ReportMetric(float64(listed), "under-replicated")
}
