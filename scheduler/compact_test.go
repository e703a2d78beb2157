package scheduler

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"
	"time"
)

// day is the unit of the compaction tests' clock.
const day = 24 * time.Hour

// compact applies a Compact at now with cutoff before and returns how many
// builds it dropped.
func compact(t *testing.T, s *State, now, before time.Time, limit int) int {
	t.Helper()
	n, err := DecodeCompactResponse(mustApply(t, s, &Compact{Time: now, Before: before, Max: limit}))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// chainState is a member n1 and a built chain a ← b ← c, finished at t0.
func chainState(t *testing.T) *State {
	t.Helper()
	s := NewState()
	mustApply(t, s, joined("n1", 4, x86))
	ids := submit(t, s, drv("a", x86), drv("b", x86, "a"), drv("c", x86, "b"))
	for _, id := range ids {
		succeed(t, s, id, "n1")
	}
	return s
}

// TestCompactKeepsAvailability: a compacted graph's records go, its items
// stay, and submitting it again builds nothing.
func TestCompactKeepsAvailability(t *testing.T) {
	s := chainState(t)
	before, _ := s.Item(outPath("c"))
	if got := compact(t, s, at(40*day), at(10*day), CompactBatch); got != 3 {
		t.Fatalf("compacted %d builds, want 3", got)
	}
	for id := BuildID(1); id <= 3; id++ {
		if _, ok := s.Build(id); ok || !s.Compacted(id) {
			t.Fatalf("build %d still there or not marked compacted", id)
		}
	}
	if it, ok := s.Item(outPath("c")); !ok || !it.Available || !slices.Equal(it.Holders, before.Holders) ||
		it.Narinfo != before.Narinfo {
		t.Fatalf("item of a compacted build: %+v, was %+v", it, before)
	}
	if _, ok := s.ItemByHash(hashPart(outPath("a"))); !ok {
		t.Fatal("narinfo lookup by hash lost")
	}
	ids := submit(t, s, drv("a", x86), drv("b", x86, "a"), drv("c", x86, "b"))
	if !slices.Equal(ids, []BuildID{4, 5, 6}) {
		t.Fatalf("resubmitted ids %v, want new ones 4 5 6", ids)
	}
	for _, id := range ids {
		if st := stateOf(t, s, id); st != BuildAvailable {
			t.Fatalf("resubmitted build %d is %s, want available", id, st)
		}
	}
	if got := s.CountBuilds(BuildFilter{}); got != 3 || s.NumBuilds() != 6 || s.NumCompacted() != 3 {
		t.Fatalf("%d builds listed of %d ids, %d compacted", got, s.NumBuilds(), s.NumCompacted())
	}
	if p := s.BuildsNewest(BuildFilter{}, 0, 10); len(p.Builds) != 3 || p.Builds[2].ID != 4 {
		t.Fatalf("page lists %+v", p.Builds)
	}
}

// TestCompactChoice is a table of which builds a Compact drops.
func TestCompactChoice(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, s *State) // after n1 joined, at t0
		max   int
		want  []BuildID // compacted
	}{
		{"old finished graph goes", func(t *testing.T, s *State) {
			for _, id := range submit(t, s, drv("a", x86), drv("b", x86, "a")) {
				succeed(t, s, id, "n1")
			}
		}, CompactBatch, []BuildID{1, 2}},
		{"an unfinished dependent keeps its input", func(t *testing.T, s *State) {
			succeed(t, s, submit(t, s, drv("a", x86))[0], "n1")
			submit(t, s, drv("b", x86, "a")) // queued
		}, CompactBatch, nil},
		{"a recent dependent keeps its input", func(t *testing.T, s *State) {
			succeed(t, s, submit(t, s, drv("a", x86))[0], "n1")
			mustApply(t, s, &Submit{Time: at(20 * day), Derivations: []Derivation{drv("b", x86, "a")}})
			mustApply(t, s, &Allocate{Time: at(20 * day), Allocations: []Allocation{{2, "n1"}}})
			mustApply(t, s, &Failed{Time: at(20 * day), Build: 2, Node: "n1", Reason: ReasonBuildError})
		}, CompactBatch, nil},
		{"a failed-dependency cause stays with its dependent", func(t *testing.T, s *State) {
			submit(t, s, drv("a", x86))
			mustApply(t, s, &Allocate{Time: t0, Allocations: []Allocation{{1, "n1"}}})
			mustApply(t, s, &Failed{Time: t0, Build: 1, Node: "n1", Reason: ReasonBuildError})
			mustApply(t, s, &Submit{Time: at(20 * day), Derivations: []Derivation{drv("b", x86, "a")}})
		}, CompactBatch, nil},
		{"running and queued builds stay", func(t *testing.T, s *State) {
			submit(t, s, drv("a", x86), drv("b", x86))
			mustApply(t, s, &Allocate{Time: t0, Allocations: []Allocation{{1, "n1"}}})
		}, CompactBatch, nil},
		{"max bounds one command, newest first", func(t *testing.T, s *State) {
			for _, id := range submit(t, s, drv("a", x86), drv("b", x86), drv("c", x86)) {
				succeed(t, s, id, "n1")
			}
		}, 2, []BuildID{2, 3}},
		{"canceled and available builds go", func(t *testing.T, s *State) {
			mustApply(t, s, &HolderAdded{Time: t0, Node: "n1", Items: []Item{item(outPath("a"))}})
			submit(t, s, drv("a", x86), drv("b", x86))
			mustApply(t, s, &Cancel{Time: t0, Builds: []BuildID{2}})
		}, CompactBatch, []BuildID{1, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewState()
			mustApply(t, s, joined("n1", 4, x86))
			tc.setup(t, s)
			if got := s.Compactable(at(10*day), tc.max); len(got) != len(tc.want) {
				t.Fatalf("Compactable lists %v, want %d builds", got, len(tc.want))
			}
			n := compact(t, s, at(40*day), at(10*day), tc.max)
			var got []BuildID
			for id := BuildID(1); int(id) <= s.NumBuilds(); id++ {
				if s.Compacted(id) {
					got = append(got, id)
				}
			}
			if n != len(got) || !slices.Equal(got, tc.want) {
				t.Fatalf("compacted %v (response %d), want %v", got, n, tc.want)
			}
			again, err := UnmarshalState(encodeState(t, s))
			if err != nil || !bytes.Equal(encodeState(t, again), encodeState(t, s)) {
				t.Fatalf("snapshot after compaction: %v", err)
			}
		})
	}
}

// TestCompactedBuildCommands: commands naming a compacted build say so, and
// a retry of a build whose cause stayed still works.
func TestCompactedBuildCommands(t *testing.T) {
	s := chainState(t)
	compact(t, s, at(40*day), at(10*day), CompactBatch)
	mustReject(t, s, &Cancel{Time: at(41 * day), Builds: []BuildID{2}}, ErrCompacted)
	mustReject(t, s, &Retry{Time: at(41 * day), Builds: []BuildID{3}}, ErrCompacted)
	mustReject(t, s, &Retry{Time: at(41 * day), Builds: []BuildID{9}}, ErrUnknownBuild)
	mustReject(t, s, &Compact{Time: at(41 * day), Before: at(42 * day), Max: 1}, ErrInvalid)
	mustReject(t, s, &Compact{Time: at(41 * day), Before: at(1 * day), Max: 0}, ErrInvalid)
	if _, err := s.Apply(Encode(&Started{Time: at(41 * day), Build: 1, Node: "n1"})); !errors.Is(err, ErrCompacted) {
		t.Fatalf("started on a compacted build: %v", err)
	}
}

// TestCompactFailureMemoryGoes: a failure older than the history is
// forgotten with its build, so the derivation is built again.
func TestCompactFailureMemoryGoes(t *testing.T) {
	s := NewState()
	mustApply(t, s, joined("n1", 4, x86))
	submit(t, s, drv("a", x86))
	mustApply(t, s, &Allocate{Time: t0, Allocations: []Allocation{{1, "n1"}}})
	mustApply(t, s, &Failed{Time: t0, Build: 1, Node: "n1", Reason: ReasonBuildError})
	if st := stateOf(t, s, submit(t, s, drv("a", x86))[0]); st != BuildFailed {
		t.Fatalf("resubmitted failed build is %s", st)
	}
	compact(t, s, at(40*day), at(10*day), CompactBatch)
	if st := stateOf(t, s, submit(t, s, drv("a", x86))[0]); st != BuildQueued {
		t.Fatalf("derivation whose failure was compacted is %s, want queued", st)
	}
}

// TestCompactFeedAndIndex: the change of a Compact lists the builds it
// dropped, the FSM's index follows, and a snapshot restore sets Index.
func TestCompactFeedAndIndex(t *testing.T) {
	f := NewFSM(nil)
	applyAt(f, 1, joined("n1", 4, x86))
	applyAt(f, 2, &HolderAdded{Time: t0, Node: "n1", Items: []Item{item(outPath("a")), item(outPath("b"))}})
	applyAt(f, 3, &Submit{Time: t0, Derivations: []Derivation{drv("a", x86), drv("b", x86), drv("c", x86)}})
	seq := f.LastChange()
	resp := applyAt(f, 4, &Compact{Time: at(40 * day), Before: at(10 * day), Max: CompactBatch})
	if b, ok := resp.([]byte); !ok {
		t.Fatalf("compact response %v", resp)
	} else if n, _ := DecodeCompactResponse(b); n != 2 {
		t.Fatalf("compacted %d, want 2", n)
	}
	ch, ok := f.ChangesSince(seq)
	if !ok || len(ch) != 1 || !slices.Equal(ch[0].Builds, []BuildID{1, 2}) {
		t.Fatalf("changes %+v", ch)
	}
	f.Read(func(s *State) {
		if got := s.Counts(); got[BuildAvailable] != 0 || got[BuildQueued] != 1 {
			t.Fatalf("counts %v", got)
		}
	})
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	g := NewFSM(nil)
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.data))); err != nil {
		t.Fatal(err)
	}
	if g.Index() != 4 {
		t.Fatalf("restored Index %d, want 4", g.Index())
	}
	g.Read(func(s *State) {
		if !s.Compacted(1) || s.NumCompacted() != 2 {
			t.Fatal("restored state lost the compaction")
		}
	})
}
