package scheduler

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fuzzState is a small state every fuzzed command is applied to.
func fuzzState(t testing.TB) *State {
	s := NewState()
	mustApply(t, s, joined("n1", 2, x86))
	mustApply(t, s, &Submit{Time: t0, Node: "n1", Derivations: []Derivation{drv("a", x86), drv("b", x86, "a")},
		Items: []Item{item(outPath("src"))}})
	mustApply(t, s, &Allocate{Time: t0, Allocations: []Allocation{{1, "n1"}}})
	return s
}

// FuzzApply applies arbitrary bytes as a command: Apply must never panic, and
// a rejected command must leave the state exactly as it was.
func FuzzApply(f *testing.F) {
	for _, c := range sampleCommands() {
		f.Add(Encode(c))
	}
	f.Add(Encode(&Succeeded{Build: 1, Node: "n1", Outputs: []Item{item(outPath("a"))}}))
	f.Add(Encode(&Succeeded{Build: 1, Node: "n1", Outputs: []Item{item(outPath("a"))}, TakeNext: true}))
	f.Add(Encode(&Failed{Build: 1, Node: "n1", Reason: ReasonBuildError}))
	f.Fuzz(func(t *testing.T, cmd []byte) {
		s := fuzzState(t)
		before := encodeState(t, s)
		if _, err := s.Apply(cmd); err != nil {
			if !bytes.Equal(before, encodeState(t, s)) {
				t.Fatalf("rejected command changed the state: %v", err)
			}
			return
		}
		after := encodeState(t, s)
		restored, err := UnmarshalState(after)
		if err != nil {
			t.Fatalf("snapshot of the new state does not restore: %v", err)
		}
		if !bytes.Equal(after, encodeState(t, restored)) {
			t.Fatal("snapshot → restore changed the state")
		}
	})
}

// FuzzUnmarshalState decodes arbitrary snapshots: never a panic, and what is
// accepted re-encodes identically and can be planned over.
func FuzzUnmarshalState(f *testing.F) {
	f.Add(encodeState(f, fuzzState(f)))
	f.Add(encodeState(f, NewState()))
	f.Add([]byte(snapshotMagic))
	v3 := fuzzState(f) // layout 3: a Compact raised the state's format
	mustApply(f, v3, &Compact{Time: at(time.Hour), Before: at(time.Hour), Max: CompactBatch})
	f.Add(encodeState(f, v3))
	for _, golden := range []string{"snapshot-v1.golden", "snapshot-v2.golden"} {
		if old, err := os.ReadFile(filepath.Join("testdata", golden)); err == nil {
			if b, err := hex.DecodeString(strings.ReplaceAll(string(old), "\n", "")); err == nil {
				f.Add(b) // older layouts still load
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := UnmarshalState(data)
		if err != nil {
			return
		}
		again := encodeState(t, s)
		s2, err := UnmarshalState(again)
		if err != nil || !bytes.Equal(again, encodeState(t, s2)) {
			t.Fatalf("re-encoded snapshot does not round-trip: %v", err)
		}
		s.Plan(views("n1", "n2"), t0, PlanOptions{})
		for _, c := range sampleCommands() {
			_, _ = s.Apply(Encode(c))
		}
		s.Builds(0, 0, nil)
		s.Members()
	})
}
