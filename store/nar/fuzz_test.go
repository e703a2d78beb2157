package nar

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// fuzzSeeds are valid and nearly valid archives to start fuzzing from.
func fuzzSeeds() [][]byte {
	golden, _ := os.ReadFile(filepath.Join("testdata", "golden.nar"))
	return [][]byte{
		golden,
		enc(cat(pre, fileA, linkB, []any{")"})...),
		enc(cat(pre, []any{"entry", "(", "name", "d", "node"}, pre[1:], fileA, []any{")", ")", ")"})...),
		enc("nix-archive-1", "(", "type", "regular", "executable", "", "contents", "#!/bin/sh\n", ")"),
		enc("nix-archive-1", "(", "type", "symlink", "target", "/gnu/store/x", ")"),
		enc(cat(pre, entryOf("b"), entryOf("a"), []any{")"})...),
		enc(cat(pre, entryOf(".."), []any{")"})...),
		enc(cat(pre, []any{")", "x"})...),
	}
}

// FuzzReader checks that the reader never panics, stays within its limits,
// and that any archive it accepts is written back identically by a Writer.
func FuzzReader(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, a []byte) {
		out, err := rewrite(a, 1<<20, 16)
		if err != nil {
			return
		}
		if !bytes.Equal(out, a) {
			t.Fatalf("accepted archive rewritten differently at byte %d", firstDiff(out, a))
		}
	})
}

// FuzzRestore restores arbitrary input into a fresh directory and checks that
// nothing but the target appears next to it (no leftovers on failure, nothing
// outside), and that a successful restore archives back to the input.
func FuzzRestore(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, a []byte) {
		parent := t.TempDir()
		dir := filepath.Join(parent, "out")
		nr := NewReader(bytes.NewReader(a))
		nr.MaxFileSize, nr.MaxDepth = 1<<20, 16
		err := nr.Restore(dir)
		entries, lerr := os.ReadDir(parent)
		if lerr != nil {
			t.Fatal(lerr)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		want := []string{"out"}
		if err != nil {
			want = nil
		}
		if !slices.Equal(names, want) {
			t.Fatalf("restore error %v; directory holds %q, want %q", err, names, want)
		}
		if err == nil {
			if got := dumpBytes(t, dir); !bytes.Equal(got, a) {
				t.Fatalf("restored tree archives differently at byte %d", firstDiff(got, a))
			}
		}
	})
}
