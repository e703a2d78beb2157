package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestListsWhatItWrites checks that every listed line names a written .drv
// file and an output of the same name, with the kinds the flags ask for.
func TestListsWhatItWrites(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	args := []string{"-chain", "2", "-leaves", "3", "-tops", "1", "-per-top", "2", "-sleep", "0", dir}
	if err := run(args, &out); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			t.Fatalf("line %q: want 3 tab-separated fields", line)
		}
		kinds[f[0]]++
		if _, err := os.Stat(f[1]); err != nil {
			t.Error(err)
		}
		if !strings.HasSuffix(f[1], "-"+f[2][strings.Index(f[2], "-")+1:]+".drv") {
			t.Errorf("file %s and output %s have different names", f[1], f[2])
		}
	}
	want := map[string]int{"toolchain": 2, "leaf": 3, "top": 1, "broken": 1, "needs-broken": 1}
	for k, n := range want {
		if kinds[k] != n {
			t.Errorf("%d %s lines, want %d (all: %v)", kinds[k], k, n, kinds)
		}
	}
}

// TestRefusesBadArguments checks that a missing directory or impossible
// shape is an error, not a partial graph.
func TestRefusesBadArguments(t *testing.T) {
	for _, args := range [][]string{{}, {"-leaves", "1", "-tops", "1", "-per-top", "2", t.TempDir()}} {
		if err := run(args, new(bytes.Buffer)); err == nil {
			t.Errorf("run %q: no error", args)
		}
	}
}
