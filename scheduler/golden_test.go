package scheduler

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The encodings of commands and snapshots are stored in Raft logs and
// snapshots on disk, so they must not change by accident. Regenerate the
// golden files after a deliberate format change (with a version bump) with
//
//	go test ./scheduler -run Golden -update
var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Fatalf("%s changed: the encoding is a stored format; bump its version and run with -update", path)
	}
}

func TestGoldenCommands(t *testing.T) {
	var b strings.Builder
	for _, c := range sampleCommands() {
		fmt.Fprintf(&b, "%s %s\n", reflect.TypeOf(c).Elem().Name(), hex.EncodeToString(Encode(c)))
	}
	golden(t, "commands.golden", b.String())
}

func TestGoldenSnapshot(t *testing.T) {
	s := fuzzState(t)
	mustApply(t, s, &Failed{Time: at(5), Build: 1, Node: "n1", Reason: ReasonBuildError, Message: "exit 1"})
	pi := joined("pi", 1, aarch)
	pi.NixKey = "pi-1:bQf0Sp8Q3aRd8sX7Qk0qS2cX8mGm0P1bYyC6nE0a8Yw="
	mustApply(t, s, pi)
	mustApply(t, s, &Submit{Time: at(6), Submitter: "bob", Tags: []Tag{{"k", "v"}}, Derivations: []Derivation{drv("arm", aarch)}})
	mustApply(t, s, &HolderAdded{Time: at(6), Node: "n1", Items: []Item{item(outPath("old"))}})
	mustApply(t, s, &Submit{Time: at(6), Derivations: []Derivation{drv("old", x86)}})
	mustApply(t, s, &Compact{Time: at(8), Before: at(7), Max: 1})
	if !s.Compacted(4) || s.NumCompacted() != 1 {
		t.Fatal("build 4 not compacted")
	}
	s.applied = 42
	data := encodeState(t, s)
	var b strings.Builder
	for len(data) > 0 {
		n := min(len(data), 64)
		b.WriteString(hex.EncodeToString(data[:n]) + "\n")
		data = data[n:]
	}
	golden(t, "snapshot.golden", b.String())
}

// TestSnapshotVersion2Loads reads a snapshot written before compaction
// (testdata/snapshot-v2.golden, the version 2 golden file as it was): its
// builds, members and items are all there, no build is compacted, and it
// re-encodes as the current version and loads again unchanged.
func TestSnapshotVersion2Loads(t *testing.T) {
	s := loadGolden(t, "snapshot-v2.golden")
	if s.NumBuilds() != 3 || s.NumCompacted() != 0 || s.applied != 0 {
		t.Fatalf("%d builds, %d compacted, applied %d; want 3, 0, 0", s.NumBuilds(), s.NumCompacted(), s.applied)
	}
	b, ok := s.Build(2)
	if !ok || b.State != BuildFailedDependency || b.Cause != 1 {
		t.Fatalf("build 2: %+v", b)
	}
	if m, ok := s.Member("pi"); !ok || m.NixKey == "" {
		t.Fatalf("member pi: %+v", m)
	}
	data := encodeState(t, s)
	again, err := UnmarshalState(data)
	if err != nil || !bytes.Equal(encodeState(t, again), data) {
		t.Fatalf("re-encoded as version %d: %v", snapshotVersion, err)
	}
}

// loadGolden decodes a hex snapshot golden file.
func loadGolden(t *testing.T, name string) *State {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	data, err := hex.DecodeString(strings.ReplaceAll(string(b), "\n", ""))
	if err != nil {
		t.Fatal(err)
	}
	s, err := UnmarshalState(data)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return s
}

// TestSnapshotVersion1Loads reads a snapshot written before members had Nix
// keys (testdata/snapshot-v1.golden, the version 1 golden file as it was):
// nodes upgraded in place must still restore it.
func TestSnapshotVersion1Loads(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "snapshot-v1.golden"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := hex.DecodeString(strings.ReplaceAll(string(b), "\n", ""))
	if err != nil {
		t.Fatal(err)
	}
	s, err := UnmarshalState(data)
	if err != nil {
		t.Fatalf("version 1 snapshot: %v", err)
	}
	ms := s.Members()
	if len(ms) == 0 {
		t.Fatal("no members")
	}
	for _, m := range ms {
		if m.Key == "" || m.NixKey != "" {
			t.Errorf("member %s: key %q, nix key %q", m.ID, m.Key, m.NixKey)
		}
	}
	again, err := UnmarshalState(encodeState(t, s))
	if err != nil || !reflect.DeepEqual(again.Members(), ms) {
		t.Fatalf("re-encoded as version %d: %v", snapshotVersion, err)
	}
}
