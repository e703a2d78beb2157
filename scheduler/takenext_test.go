package scheduler

import (
	"testing"
	"time"
)

// finish commits a TakeNext Succeeded of build id on node.
func finish(t *testing.T, s *State, id BuildID, node string, takeNext bool) {
	t.Helper()
	b, _ := s.Build(id)
	var outs []Item
	for _, o := range b.Outputs {
		outs = append(outs, item(o.Path))
	}
	mustApply(t, s, &Succeeded{Time: at(time.Minute), Build: id, Node: node, Outputs: outs, TakeNext: takeNext})
}

func TestTakeNextRunsTheReadyDependentOnTheSameNode(t *testing.T) {
	s := farm(t)
	ids := submit(t, s, drv("a", x86), drv("b", x86, "a"), drv("c", x86, "b"))
	succeedStarted(t, s, ids[0], "n2")
	finish(t, s, ids[0], "n2", true)
	b, _ := s.Build(ids[1])
	if b.State != BuildRunning || b.Node != "n2" || b.Attempt != 1 ||
		!b.Allocated.Equal(at(time.Minute)) || !b.Started.Equal(at(time.Minute)) {
		t.Fatalf("dependent after a TakeNext success: %+v", b)
	}
	if st := stateOf(t, s, ids[2]); st != BuildQueued {
		t.Fatalf("c (needs b) is %s", st)
	}
	// The node's count holds the build it took: n2 runs one at a time.
	mustReject(t, s, &Allocate{Allocations: []Allocation{{ids[2], "n2"}}}, ErrIneligible)
	finish(t, s, ids[1], "n2", true)
	if b, _ := s.Build(ids[2]); b.State != BuildRunning || b.Node != "n2" {
		t.Fatalf("c after b's TakeNext success: %+v", b)
	}
	finish(t, s, ids[2], "n2", true) // no dependent: nothing to take
	if got := s.NodeBuilds("n2"); len(got) != 0 {
		t.Fatalf("n2 still has %+v", got)
	}
}

func TestTakeNextTakesOnlyWhatAllocateWould(t *testing.T) {
	arm := drv("arm", "aarch64-linux", "a")
	tests := []struct {
		name  string
		drvs  []Derivation
		setup func(t *testing.T, s *State, ids []BuildID)
		want  BuildState // of the last derivation
	}{
		{"without TakeNext the leader allocates", []Derivation{drv("b", x86, "a")}, nil, BuildQueued},
		{"another input missing", []Derivation{drv("z", x86), drv("b", x86, "a", "z")}, nil, BuildQueued},
		{"a system the node does not build", []Derivation{arm}, nil, BuildQueued},
		{"the node has no free slot", []Derivation{drv("x", x86), drv("b", x86, "a")},
			func(t *testing.T, s *State, ids []BuildID) {
				mustApply(t, s, &Allocate{Allocations: []Allocation{{ids[1], "n1"}}})
				mustApply(t, s, joined("n1", 1, x86)) // restarted with fewer slots than it runs
			}, BuildQueued},
		{"a ready build of higher priority waits", []Derivation{drv("b", x86, "a")},
			func(t *testing.T, s *State, _ []BuildID) {
				mustApply(t, s, &Submit{Time: t0, Submitter: "test", Priority: 5, Derivations: []Derivation{drv("urgent", x86)}})
			}, BuildQueued},
		{"a higher priority the node cannot build does not hold it back", []Derivation{drv("b", x86, "a")},
			func(t *testing.T, s *State, _ []BuildID) {
				mustApply(t, s, &Submit{Time: t0, Submitter: "test", Priority: 5,
					Derivations: []Derivation{drv("pi", "aarch64-linux")}})
			}, BuildRunning},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := farm(t)
			mustApply(t, s, joined("pi", 1, "aarch64-linux"))
			ids := submit(t, s, append([]Derivation{drv("a", x86)}, tt.drvs...)...)
			succeedStarted(t, s, ids[0], "n1")
			if tt.setup != nil {
				tt.setup(t, s, ids)
			}
			finish(t, s, ids[0], "n1", tt.name != "without TakeNext the leader allocates")
			if got := stateOf(t, s, ids[len(ids)-1]); got != tt.want {
				t.Fatalf("dependent is %s, want %s", got, tt.want)
			}
		})
	}
}

// TestTakeNextPicksByPriorityThenAge: of several dependents made ready, the
// node takes the one the allocation loop would place first; the others stay
// queued for the loop.
func TestTakeNextPicksByPriorityThenAge(t *testing.T) {
	s := farm(t)
	ids := submit(t, s, drv("a", x86), drv("old", x86, "a"), drv("young", x86, "a"))
	hi := Submit{Time: t0, Submitter: "test", Priority: 3, Derivations: []Derivation{drv("urgent", x86, "a")}}
	urgent, err := DecodeSubmitResponse(mustApply(t, s, &hi))
	if err != nil {
		t.Fatal(err)
	}
	succeedStarted(t, s, ids[0], "n2")
	finish(t, s, ids[0], "n2", true)
	want := map[BuildID]BuildState{urgent[0]: BuildRunning, ids[1]: BuildQueued, ids[2]: BuildQueued}
	for id, st := range want {
		if got := stateOf(t, s, id); got != st {
			t.Errorf("build %d is %s, want %s", id, got, st)
		}
	}
	s2 := farm(t)
	ids = submit(t, s2, drv("a", x86), drv("old", x86, "a"), drv("young", x86, "a"))
	succeedStarted(t, s2, ids[0], "n2")
	finish(t, s2, ids[0], "n2", true)
	if stateOf(t, s2, ids[1]) != BuildRunning || stateOf(t, s2, ids[2]) != BuildQueued {
		t.Fatalf("equal priorities: old %s, young %s", stateOf(t, s2, ids[1]), stateOf(t, s2, ids[2]))
	}
}

// succeedStarted allocates and starts build id on node.
func succeedStarted(t *testing.T, s *State, id BuildID, node string) {
	t.Helper()
	mustApply(t, s, &Allocate{Time: t0, Allocations: []Allocation{{Build: id, Node: node}}})
	mustApply(t, s, &Started{Time: t0, Build: id, Node: node})
}

func TestTakeNextIsAFormat3Command(t *testing.T) {
	c := &Succeeded{Time: t0, Build: 1, Node: "n1", Outputs: []Item{item(outPath("a"))}, TakeNext: true}
	b := Encode(c)
	if CommandType(b[0]) != TypeSucceededTakeNext || CommandFormat(b) != 3 || TypeFormat(TypeSucceededTakeNext) != 3 {
		t.Fatalf("encoded as type %d format %d", b[0], CommandFormat(b))
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := got.(*Succeeded); !ok || !s.TakeNext || s.Node != "n1" {
		t.Fatalf("decoded %+v", got)
	}
	if b := Encode(&Succeeded{Build: 1, Node: "n1"}); CommandFormat(b) != 1 {
		t.Fatalf("a plain Succeeded is of format %d", CommandFormat(b))
	}
}
