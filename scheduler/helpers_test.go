package scheduler

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// t0 is the time the test commands start at.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// at returns t0 plus d.
func at(d time.Duration) time.Time { return t0.Add(d) }

// drvPath and outPath give fake but well-formed store paths for a name.
func drvPath(name string) string { return "/gnu/store/" + hash32(name+".drv") + "-" + name + ".drv" }
func outPath(name string) string { return "/gnu/store/" + hash32(name) + "-" + name }

// hash32 makes a 32-character nix-base32-looking hash part from a name.
func hash32(name string) string {
	const alphabet = "0123456789abcdfghijklmnpqrsvwxyz"
	h := uint64(14695981039346656037)
	for i := 0; i < len(name); i++ {
		h = (h ^ uint64(name[i])) * 1099511628211
	}
	var b [32]byte
	for i := range b {
		h = h*6364136223846793005 + 1442695040888963407
		b[i] = alphabet[h>>59]
	}
	return string(b[:])
}

// drv makes a derivation named name for system with one output "out",
// depending on the "out" output of each input.
func drv(name, system string, inputs ...string) Derivation {
	d := Derivation{Path: drvPath(name), System: system, Outputs: []Output{{Name: "out", Path: outPath(name)}}}
	for _, in := range inputs {
		d.Inputs = append(d.Inputs, Input{Drv: drvPath(in), Outputs: []string{"out"}})
	}
	return d
}

// item makes the narinfo record of a path.
func item(path string) Item {
	return Item{Path: path, NarHash: "sha256:" + hash32(path) + hash32(path)[:20], NarSize: 1234,
		Narinfo: "StorePath: " + path + "\n", Signature: "sig"}
}

// joined makes a NodeJoined for a node building systems with max builds.
func joined(node string, maxBuilds int, systems ...string) *NodeJoined {
	return &NodeJoined{Time: t0, Node: node, Key: "key-" + node, Systems: systems, MaxBuilds: maxBuilds}
}

// mustApply applies a command and fails the test on error.
func mustApply(t testing.TB, s *State, c Command) []byte {
	t.Helper()
	resp, err := s.Apply(Encode(c))
	if err != nil {
		t.Fatalf("apply %T: %v", c, err)
	}
	return resp
}

// mustReject applies a command that must fail with want and change nothing.
func mustReject(t testing.TB, s *State, c Command, want error) {
	t.Helper()
	before := encodeState(t, s)
	_, err := s.Apply(Encode(c))
	if !errors.Is(err, want) {
		t.Fatalf("apply %T: got error %v, want %v", c, err, want)
	}
	if !bytes.Equal(before, encodeState(t, s)) {
		t.Fatalf("rejected %T changed the state", c)
	}
}

// submit applies a Submit of drvs and returns the build ids.
func submit(t testing.TB, s *State, drvs ...Derivation) []BuildID {
	t.Helper()
	ids, err := DecodeSubmitResponse(mustApply(t, s, &Submit{Time: t0, Submitter: "test", Derivations: drvs}))
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func encodeState(t testing.TB, s *State) []byte {
	t.Helper()
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// stateOf returns a build's state.
func stateOf(t testing.TB, s *State, id BuildID) BuildState {
	t.Helper()
	b, ok := s.Build(id)
	if !ok {
		t.Fatalf("build %d missing", id)
	}
	return b.State
}

// succeed allocates, starts and completes build id on node.
func succeed(t testing.TB, s *State, id BuildID, node string) {
	t.Helper()
	mustApply(t, s, &Allocate{Time: t0, Allocations: []Allocation{{Build: id, Node: node}}})
	mustApply(t, s, &Started{Time: t0, Build: id, Node: node})
	b, _ := s.Build(id)
	var outs []Item
	for _, o := range b.Outputs {
		outs = append(outs, item(o.Path))
	}
	mustApply(t, s, &Succeeded{Time: t0, Build: id, Node: node, Outputs: outs})
}

// distribution makes a graph shaped like a distribution, inputs first: a deep
// chain of toolchain derivations (each depending on the previous two), then
// libraries depending on a few toolchain members and earlier libraries, then
// wide leaves depending on libraries. Systems alternate over systems.
func distribution(n int, systems []string, seed uint64) []Derivation {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	core := min(n, max(n/100, 10))
	libs := min(n-core, n/5)
	drvs := make([]Derivation, 0, n)
	name := func(i int) string { return fmt.Sprintf("pkg-%d-%d", seed, i) }
	for i := range n {
		sys := systems[i%len(systems)]
		var ins []string
		switch {
		case i < core:
			for j := max(0, i-2); j < i; j++ {
				ins = append(ins, name(j))
			}
		case i < core+libs:
			ins = append(ins, name(core-1), name(rng.IntN(core)))
			if i > core {
				ins = append(ins, name(core+rng.IntN(i-core)))
			}
		default:
			ins = append(ins, name(core-1))
			for range 3 {
				ins = append(ins, name(core+rng.IntN(max(libs, 1))))
			}
		}
		d := drv(name(i), sys, dedupe(ins)...)
		d.Sources = []string{outPath(fmt.Sprintf("source-%d", i%50))}
		drvs = append(drvs, d)
	}
	return drvs
}

func dedupe(xs []string) []string {
	seen := map[string]bool{}
	out := xs[:0]
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
