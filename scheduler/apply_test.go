package scheduler

import (
	"testing"
	"time"
)

const x86 = "x86_64-linux"

// farm returns a state with two x86_64 nodes (n1 with 2 slots, n2 with 1).
func farm(t *testing.T) *State {
	s := NewState()
	mustApply(t, s, joined("n1", 2, x86))
	mustApply(t, s, joined("n2", 1, x86))
	return s
}

func TestSubmitSemantics(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, s *State)
	}{
		{"graph is queued with deterministic ids", func(t *testing.T, s *State) {
			ids := submit(t, s, drv("a", x86), drv("b", x86, "a"))
			if ids[0] != 1 || ids[1] != 2 {
				t.Fatalf("ids %v", ids)
			}
			for _, id := range ids {
				if st := stateOf(t, s, id); st != BuildQueued {
					t.Fatalf("build %d is %s", id, st)
				}
			}
		}},
		{"inputs must come first", func(t *testing.T, s *State) {
			mustReject(t, s, &Submit{Derivations: []Derivation{drv("b", x86, "a"), drv("a", x86)}}, ErrUnknownDerivation)
		}},
		{"unknown input output is rejected", func(t *testing.T, s *State) {
			b := drv("b", x86, "a")
			b.Inputs[0].Outputs = []string{"lib"}
			mustReject(t, s, &Submit{Derivations: []Derivation{drv("a", x86), b}}, ErrInvalid)
		}},
		{"duplicate derivation is rejected", func(t *testing.T, s *State) {
			mustReject(t, s, &Submit{Derivations: []Derivation{drv("a", x86), drv("a", x86)}}, ErrInvalid)
		}},
		{"available outputs are not built", func(t *testing.T, s *State) {
			mustApply(t, s, &HolderAdded{Node: "n1", Items: []Item{item(outPath("a"))}})
			ids := submit(t, s, drv("a", x86), drv("b", x86, "a"))
			if st := stateOf(t, s, ids[0]); st != BuildAvailable {
				t.Fatalf("a is %s, want available", st)
			}
			if st := stateOf(t, s, ids[1]); st != BuildQueued {
				t.Fatalf("b is %s", st)
			}
		}},
		{"force builds available outputs", func(t *testing.T, s *State) {
			mustApply(t, s, &HolderAdded{Node: "n1", Items: []Item{item(outPath("a"))}})
			a := drv("a", x86)
			a.Force = true
			if st := stateOf(t, s, submit(t, s, a)[0]); st != BuildQueued {
				t.Fatalf("forced a is %s", st)
			}
		}},
		{"queued build is shared and its priority raised", func(t *testing.T, s *State) {
			first := submit(t, s, drv("a", x86))
			ids, _ := DecodeSubmitResponse(mustApply(t, s, &Submit{Priority: 9, Derivations: []Derivation{drv("a", x86)}}))
			if ids[0] != first[0] || s.NumBuilds() != 1 {
				t.Fatalf("resubmission made a new build: %v %v", first, ids)
			}
			if b, _ := s.Build(ids[0]); b.Priority != 9 {
				t.Fatalf("priority %d, want 9", b.Priority)
			}
		}},
		{"unserved system is blocked until a member builds it", func(t *testing.T, s *State) {
			id := submit(t, s, drv("arm", "aarch64-linux"))[0]
			if st := stateOf(t, s, id); st != BuildBlocked {
				t.Fatalf("state %s", st)
			}
			mustApply(t, s, joined("pi", 1, "aarch64-linux"))
			if st := stateOf(t, s, id); st != BuildQueued {
				t.Fatalf("after join: %s", st)
			}
			mustApply(t, s, &NodeLeft{Node: "pi"})
			if st := stateOf(t, s, id); st != BuildBlocked {
				t.Fatalf("after leave: %s", st)
			}
		}},
		{"genuine failure fails dependents, is remembered and recovers on retry", func(t *testing.T, s *State) {
			ids := submit(t, s, drv("a", x86), drv("b", x86, "a"), drv("c", x86, "b"))
			mustApply(t, s, &Allocate{Allocations: []Allocation{{ids[0], "n1"}}})
			mustApply(t, s, &Failed{Build: ids[0], Node: "n1", Reason: ReasonBuildError})
			wantStates(t, s, ids, BuildFailed, BuildFailedDependency, BuildFailedDependency)
			submit(t, s, drv("a", x86), drv("b", x86, "a"), drv("c", x86, "b"))
			wantStates(t, s, ids, BuildFailed, BuildFailedDependency, BuildFailedDependency)
			mustApply(t, s, &Retry{Builds: []BuildID{ids[2]}}) // retries the cause, a
			wantStates(t, s, ids, BuildQueued, BuildFailedDependency, BuildFailedDependency)
			succeed(t, s, ids[0], "n1")
			wantStates(t, s, ids, BuildSucceeded, BuildQueued, BuildQueued)
		}},
		{"failed outputs are remembered across derivations", func(t *testing.T, s *State) {
			id := submit(t, s, drv("a", x86))[0]
			mustApply(t, s, &Allocate{Allocations: []Allocation{{id, "n1"}}})
			mustApply(t, s, &Failed{Build: id, Node: "n1", Reason: ReasonTimeout})
			other := drv("a-other", x86)
			other.Outputs[0].Path = outPath("a")
			b, _ := s.Build(submit(t, s, other)[0])
			if b.State != BuildFailed || b.Reason != ReasonTimeout {
				t.Fatalf("derivation with a known-failed output is %s (%s), want failed (timeout)", b.State, b.Reason)
			}
		}},
		{"transient failure backs off and is bounded", func(t *testing.T, s *State) {
			id := submit(t, s, drv("a", x86))[0]
			now := t0
			for attempt := 1; attempt <= MaxAttempts; attempt++ {
				mustApply(t, s, &Allocate{Time: now, Allocations: []Allocation{{id, "n1"}}})
				mustApply(t, s, &Failed{Time: now, Build: id, Node: "n1", Reason: ReasonInfrastructure})
				b, _ := s.Build(id)
				if attempt == MaxAttempts {
					if b.State != BuildFailed {
						t.Fatalf("after %d attempts: %s", attempt, b.State)
					}
					break
				}
				if b.State != BuildQueued || !b.NotBefore.After(now) {
					t.Fatalf("attempt %d: state %s, not before %v", attempt, b.State, b.NotBefore)
				}
				mustReject(t, s, &Allocate{Time: now, Allocations: []Allocation{{id, "n1"}}}, ErrWrongState)
				now = b.NotBefore
			}
			if st := stateOf(t, s, submit(t, s, drv("a", x86))[0]); st != BuildQueued {
				t.Fatalf("resubmitting an exhausted transient failure: %s", st)
			}
		}},
		{"cancel fails dependents and resubmission revives", func(t *testing.T, s *State) {
			ids := submit(t, s, drv("a", x86), drv("b", x86, "a"))
			mustApply(t, s, &Allocate{Allocations: []Allocation{{ids[0], "n2"}}})
			mustApply(t, s, &Cancel{Builds: ids[:1]})
			wantStates(t, s, ids, BuildCanceled, BuildFailedDependency)
			if m := s.Members()[1]; m.Active != 0 {
				t.Fatalf("canceled build still holds a slot on n2: %d", m.Active)
			}
			submit(t, s, drv("a", x86))
			wantStates(t, s, ids, BuildQueued, BuildFailedDependency)
		}},
		{"a lost output that a build needs is rebuilt", func(t *testing.T, s *State) {
			ids := submit(t, s, drv("a", x86), drv("b", x86, "a"), drv("c", x86))
			succeed(t, s, ids[0], "n1")
			succeed(t, s, ids[2], "n1")
			mustApply(t, s, &HolderRemoved{Node: "n1", Paths: []string{outPath("a"), outPath("c")}})
			wantStates(t, s, ids, BuildQueued, BuildQueued, BuildSucceeded)
			succeed(t, s, ids[0], "n2")
			mustApply(t, s, &NodeLost{Node: "n2"})
			wantStates(t, s, ids, BuildQueued, BuildQueued, BuildSucceeded)
		}},
		{"a canceled build whose input failed is not revived by resubmission", func(t *testing.T, s *State) {
			ids := submit(t, s, drv("a", x86), drv("b", x86, "a"))
			mustApply(t, s, &Cancel{Builds: ids[1:]})
			mustApply(t, s, &Allocate{Allocations: []Allocation{{ids[0], "n1"}}})
			mustApply(t, s, &Failed{Build: ids[0], Node: "n1", Reason: ReasonBuildError})
			submit(t, s, drv("a", x86), drv("b", x86, "a"))
			wantStates(t, s, ids, BuildFailed, BuildFailedDependency)
		}},
		{"a lost output whose inputs failed fails what waits for it", func(t *testing.T, s *State) {
			ids := submit(t, s, drv("a", x86), drv("b", x86, "a"))
			mustApply(t, s, &Allocate{Allocations: []Allocation{{ids[0], "n1"}}})
			mustApply(t, s, &Failed{Build: ids[0], Node: "n1", Reason: ReasonBuildError})
			mustApply(t, s, &HolderAdded{Node: "n2", Items: []Item{item(outPath("b"))}})
			c := submit(t, s, drv("a", x86), drv("b", x86, "a"), drv("c", x86, "b"))[2]
			wantStates(t, s, append(ids, c), BuildFailed, BuildAvailable, BuildQueued)
			mustApply(t, s, &NodeLost{Node: "n2"})
			wantStates(t, s, append(ids, c), BuildFailed, BuildFailedDependency, BuildFailedDependency)
		}},
		{"output held elsewhere recovers dependents", func(t *testing.T, s *State) {
			ids := submit(t, s, drv("a", x86), drv("b", x86, "a"))
			mustApply(t, s, &Allocate{Allocations: []Allocation{{ids[0], "n1"}}})
			mustApply(t, s, &Failed{Build: ids[0], Node: "n1", Reason: ReasonBuildError})
			mustApply(t, s, &HolderAdded{Node: "n2", Items: []Item{item(outPath("a"))}})
			wantStates(t, s, ids, BuildFailed, BuildQueued)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, farm(t)) })
	}
}

func wantStates(t *testing.T, s *State, ids []BuildID, want ...BuildState) {
	t.Helper()
	for i, id := range ids {
		if st := stateOf(t, s, id); st != want[i] {
			t.Fatalf("build %d is %s, want %s", id, st, want[i])
		}
	}
}

func TestAllocateVerify(t *testing.T) {
	arm := drv("arm", "aarch64-linux")
	kvm := drv("kvm", x86)
	kvm.Features = []string{"kvm"}
	tests := []struct {
		name  string
		setup func(t *testing.T, s *State) // after submitting a, b (needs a), arm, kvm
		alloc []Allocation
		want  error
	}{
		{"not queued", func(t *testing.T, s *State) {
			mustApply(t, s, &Allocate{Allocations: []Allocation{{1, "n1"}}})
		}, []Allocation{{1, "n2"}}, ErrWrongState},
		{"twice in one command", nil, []Allocation{{1, "n1"}, {1, "n1"}}, ErrInvalid},
		{"unknown build", nil, []Allocation{{99, "n1"}}, ErrUnknownBuild},
		{"unknown node", nil, []Allocation{{1, "nx"}}, ErrUnknownNode},
		{"wrong system", func(t *testing.T, s *State) { mustApply(t, s, joined("pi", 1, "aarch64-linux")) },
			[]Allocation{{1, "pi"}}, ErrIneligible},
		{"missing feature", nil, []Allocation{{4, "n1"}}, ErrIneligible},
		{"lost node", func(t *testing.T, s *State) { mustApply(t, s, &NodeLost{Node: "n1"}) },
			[]Allocation{{1, "n1"}}, ErrIneligible},
		{"beyond max builds", nil, []Allocation{{1, "n2"}, {4, "n2"}}, ErrIneligible},
		{"inputs missing", nil, []Allocation{{2, "n1"}}, ErrInputsMissing},
		{"one bad allocation rejects all", nil, []Allocation{{1, "n1"}, {2, "n1"}}, ErrInputsMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := farm(t)
			submit(t, s, drv("a", x86), drv("b", x86, "a"), arm, kvm)
			if tt.setup != nil {
				tt.setup(t, s)
			}
			mustReject(t, s, &Allocate{Allocations: tt.alloc}, tt.want)
		})
	}
}

func TestBuildLifecycle(t *testing.T) {
	s := farm(t)
	ids := submit(t, s, drv("a", x86), drv("b", x86, "a"))
	mustReject(t, s, &Started{Build: ids[0], Node: "n1"}, ErrWrongState)
	mustApply(t, s, &Allocate{Time: at(time.Second), Allocations: []Allocation{{ids[0], "n1"}}})
	mustReject(t, s, &Started{Build: ids[0], Node: "n2"}, ErrWrongState)
	mustApply(t, s, &Started{Time: at(2 * time.Second), Build: ids[0], Node: "n1"})
	mustApply(t, s, &Started{Time: at(2 * time.Second), Build: ids[0], Node: "n1"}) // resent: harmless
	mustReject(t, s, &Succeeded{Build: ids[0], Node: "n1", Outputs: []Item{item(outPath("zzz"))}}, ErrInvalid)
	mustApply(t, s, &Succeeded{Time: at(3 * time.Second), Build: ids[0], Node: "n1", Outputs: []Item{item(outPath("a"))}})
	mustApply(t, s, &Succeeded{Build: ids[0], Node: "n1", Outputs: []Item{item(outPath("a"))}}) // resent
	b, _ := s.Build(ids[0])
	if b.State != BuildSucceeded || b.Node != "" || b.LastNode != "n1" || !b.Started.Equal(at(2*time.Second)) || !b.Finished.Equal(at(3*time.Second)) {
		t.Fatalf("after success: %+v", b)
	}
	if b, _ := s.Build(ids[1]); b.LastNode != "" {
		t.Fatalf("never allocated, yet last node %q", b.LastNode)
	}
	it, ok := s.ItemByHash(hash32("a"))
	if !ok || it.Holders[0] != "n1" || it.Narinfo == "" {
		t.Fatalf("output item: %+v %v", it, ok)
	}
	bad := item(outPath("a"))
	bad.NarHash = "sha256:other"
	mustReject(t, s, &HolderAdded{Node: "n2", Items: []Item{bad}}, ErrHashMismatch)
	mustApply(t, s, &Allocate{Allocations: []Allocation{{ids[1], "n2"}}})
	if got := s.NodeBuilds("n2"); len(got) != 1 || got[0].ID != ids[1] {
		t.Fatalf("n2 builds: %+v", got)
	}
}

func TestSucceededReportsEveryOutputOnce(t *testing.T) {
	s := farm(t)
	two := drv("two", x86)
	two.Outputs = append(two.Outputs, Output{Name: "lib", Path: outPath("two-lib")})
	id := submit(t, s, two)[0]
	mustApply(t, s, &Allocate{Allocations: []Allocation{{id, "n1"}}})
	out, lib := item(outPath("two")), item(outPath("two-lib"))
	mustReject(t, s, &Succeeded{Build: id, Node: "n1", Outputs: []Item{out, out}}, ErrInvalid)
	mustReject(t, s, &Succeeded{Build: id, Node: "n1", Outputs: []Item{out}}, ErrInvalid)
	mustApply(t, s, &Succeeded{Build: id, Node: "n1", Outputs: []Item{lib, out}})
	if it, ok := s.Item(outPath("two-lib")); !ok || !it.Available {
		t.Fatalf("second output not available: %+v %v", it, ok)
	}
}

func TestNodeLostRequeues(t *testing.T) {
	s := farm(t)
	ids := submit(t, s, drv("a", x86), drv("b", x86))
	mustApply(t, s, &Allocate{Allocations: []Allocation{{ids[0], "n1"}, {ids[1], "n1"}}})
	mustApply(t, s, &Started{Build: ids[0], Node: "n1"})
	mustApply(t, s, &NodeLost{Time: at(time.Minute), Node: "n1"})
	for _, id := range ids {
		b, _ := s.Build(id)
		if b.State != BuildQueued || b.Node != "" || b.LastNode != "n1" || b.Reason != ReasonAgentLost || b.NotBefore.After(at(time.Minute)) {
			t.Fatalf("after node lost: %+v", b)
		}
	}
	mustReject(t, s, &Allocate{Time: at(time.Minute), Allocations: []Allocation{{ids[0], "n1"}}}, ErrIneligible)
	mustApply(t, s, &Allocate{Time: at(time.Minute), Allocations: []Allocation{{ids[0], "n2"}}})
	mustApply(t, s, joined("n1", 2, x86)) // it came back
	mustApply(t, s, &Allocate{Time: at(time.Minute), Allocations: []Allocation{{ids[1], "n1"}}})
}
