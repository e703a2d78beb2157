package scheduler

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/hashicorp/raft"
)

// fsmApply feeds a command to an FSM as Raft would.
func fsmApply(f *FSM, c Command) any {
	return f.Apply(&raft.Log{Type: raft.LogCommand, Data: Encode(c)})
}

func woken(sub *Subscription) bool {
	select {
	case <-sub.C:
		return true
	default:
		return false
	}
}

func TestNotifications(t *testing.T) {
	f := NewFSM(nil)
	fsmApply(f, joined("n1", 2, x86))
	fsmApply(f, joined("n2", 2, x86))
	n1, n2 := f.WatchNode("n1"), f.WatchNode("n2")
	waitA := f.WatchPaths([]string{outPath("a"), outPath("elsewhere")})
	all := f.Changes()
	fsmApply(f, &Submit{Derivations: []Derivation{drv("a", x86), drv("b", x86, "a")}})
	if woken(n1) || woken(n2) || woken(waitA) || !woken(all) {
		t.Fatal("a submit woke the wrong subscribers")
	}
	fsmApply(f, &Allocate{Allocations: []Allocation{{1, "n1"}}})
	fsmApply(f, &Allocate{Allocations: []Allocation{{2, "n1"}}}) // rejected: inputs missing
	if !woken(n1) || woken(n2) || woken(waitA) {
		t.Fatal("an allocation to n1 woke the wrong subscribers")
	}
	if woken(n1) {
		t.Fatal("wake-ups did not coalesce, or a rejected command woke n1")
	}
	fsmApply(f, &Succeeded{Build: 1, Node: "n1", Outputs: []Item{item(outPath("a"))}})
	if !woken(waitA) || !woken(n1) {
		t.Fatal("success did not wake the path watcher and the node")
	}
	waitA.Close()
	waitA.Close() // idempotent
	fsmApply(f, &HolderRemoved{Node: "n1", Paths: []string{outPath("a")}})
	fsmApply(f, &HolderAdded{Node: "n2", Items: []Item{item(outPath("a"))}})
	if woken(waitA) {
		t.Fatal("a closed subscription was woken")
	}
	var paths int
	f.subs.mu.Lock()
	paths = len(f.subs.byPath)
	f.subs.mu.Unlock()
	if paths != 0 {
		t.Fatalf("closed path watch left %d entries", paths)
	}
}

func TestSplitSubmit(t *testing.T) {
	drvs := distribution(1000, []string{x86}, 3)
	// Reverse so the splitter has to sort.
	rev := make([]Derivation, len(drvs))
	for i, d := range drvs {
		rev[len(drvs)-1-i] = d
	}
	cmds, err := SplitSubmit(Submit{Time: t0, Node: "n1", Derivations: rev, Items: sourceItems(drvs)}, 64)
	if err != nil {
		t.Fatal(err)
	}
	s := farm(t)
	for i := range cmds {
		if len(cmds[i].Derivations) > 64 || len(cmds[i].Items) > 64 {
			t.Fatalf("batch %d too big", i)
		}
		mustApply(t, s, &cmds[i]) // fails if a batch refers to a later one
	}
	if s.NumBuilds() != 1000 {
		t.Fatalf("%d builds", s.NumBuilds())
	}
	cyc := []Derivation{drv("x", x86, "y"), drv("y", x86, "x")}
	if _, err := SplitSubmit(Submit{Derivations: cyc}, 10); !errors.Is(err, ErrCycle) {
		t.Fatalf("cycle: %v", err)
	}
	if _, err := SplitSubmit(Submit{Derivations: []Derivation{drv("x", x86), drv("x", x86)}}, 10); !errors.Is(err, ErrInvalid) {
		t.Fatalf("duplicate: %v", err)
	}
}

func TestViews(t *testing.T) {
	s := farm(t)
	mustApply(t, s, &Submit{Time: t0, Submitter: "alice", Priority: 2, Tags: []Tag{{"job", "j1"}},
		Derivations: []Derivation{drv("a", x86), drv("b", x86, "a")}})
	b, ok := s.BuildByDrv(drvPath("b"))
	if !ok || b.ID != 2 || b.Submitter != "alice" || b.Tags[0].Value != "j1" || b.Inputs[0] != outPath("a") ||
		b.Outputs[0] != (Output{"out", outPath("b")}) || !b.Submitted.Equal(t0) || b.State.String() != "queued" {
		t.Fatalf("build view: %+v", b)
	}
	if got := s.Builds(1, 0, func(st BuildState) bool { return st == BuildQueued }); len(got) != 1 || got[0].ID != 2 {
		t.Fatalf("builds after 1: %+v", got)
	}
	m := s.Members()
	if len(m) != 2 || m[0].ID != "n1" || m[0].Key != "key-n1" || m[0].Status != "active" || m[0].Systems[0] != x86 {
		t.Fatalf("members: %+v", m)
	}
	for st, want := range map[BuildState]string{BuildFailedDependency: "failed-dependency", 200: "unknown"} {
		if st.String() != want {
			t.Errorf("%d.String() = %q", st, st.String())
		}
	}
	if fmt.Sprint(ReasonAgentLost) != "agent-lost" || !ReasonMissingInput.Transient() || ReasonTimeout.Transient() {
		t.Error("reason names or transience wrong")
	}
}

// TestRestoreEmptyResets checks that an empty snapshot resets the FSM to its
// initial state and wakes subscribers, that a real snapshot restores, and
// that a malformed one is refused and changes nothing.
func TestRestoreEmptyResets(t *testing.T) {
	initial, err := NewState().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	f := NewFSM(nil)
	fsmApply(f, joined("n1", 1, x86))
	// A Compact raises the state to format 2, whose snapshots keep the index.
	fsmApply(f, &Compact{Time: at(1), Before: at(0), Max: 1})
	f.Apply(&raft.Log{Type: raft.LogCommand, Index: 7, Data: Encode(&Submit{Derivations: []Derivation{drv("a", x86)}})})
	full := encodeFSM(t, f)
	if bytes.Equal(full, initial) || f.Index() != 7 {
		t.Fatalf("commands left the state unchanged or Index at %d, want 7", f.Index())
	}
	all := f.Changes()
	for _, tc := range []struct {
		name     string
		snapshot []byte
		want     []byte
		index    uint64
		fails    bool
	}{
		{"empty resets", nil, initial, 0, false},
		{"snapshot restores its index", full, full, 7, false},
		{"malformed refused", []byte("junk"), full, 7, true},
		{"empty again", []byte{}, initial, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := f.Restore(io.NopCloser(bytes.NewReader(tc.snapshot)))
			if (err != nil) != tc.fails {
				t.Fatalf("Restore: %v, want failure %v", err, tc.fails)
			}
			if got := encodeFSM(t, f); !bytes.Equal(got, tc.want) {
				t.Errorf("state after Restore differs from the expected one (%d bytes, want %d)", len(got), len(tc.want))
			}
			if f.Index() != tc.index {
				t.Errorf("Index %d, want %d", f.Index(), tc.index)
			}
			if got := woken(all); got == tc.fails {
				t.Errorf("subscriber woken: %v, want %v", got, !tc.fails)
			}
		})
	}
}

// encodeFSM is the snapshot encoding of f's state.
func encodeFSM(t *testing.T, f *FSM) []byte {
	t.Helper()
	var data []byte
	var err error
	f.Read(func(s *State) { data, err = s.MarshalBinary() })
	if err != nil {
		t.Fatal(err)
	}
	return data
}
