package main

import (
	"testing"

	"github.com/tbfg/tbfg-node/node/adminapi"
)

// TestGC checks that `tbfg-node gc` passes --dry-run and --free to the node
// and prints each item with its size, then the total.
func TestGC(t *testing.T) {
	f := newFakeNode(0)
	f.gc = adminapi.GCResult{StoreSize: 3 << 20, Want: 1 << 20, Freed: 1536 + 2<<20, Removed: []adminapi.GCItem{
		{Path: "/gnu/store/aaaa-input", Size: 1536, Class: "fetched"},
		{Path: "/gnu/store/bbbb-copy", Size: 2 << 20, Class: "replica"},
	}}
	dir := f.serve(t)
	code, out, stderr := runCLI(t, "gc", "--data-dir", dir, "--dry-run", "--free", "1M")
	want := "1.5 KiB  fetched  /gnu/store/aaaa-input\n" +
		"2.0 MiB  replica  /gnu/store/bbbb-copy\n" +
		"would remove 2 items, 2.0 MiB (store 3.0 MiB, asked to free 1.0 MiB)\n"
	if code != 0 || out != want || stderr != "" {
		t.Errorf("exit %d, stdout:\n%s\nstderr:\n%s\nwant stdout:\n%s", code, out, stderr, want)
	}
	if f.gcReq != (adminapi.GCRequest{DryRun: true, Free: 1 << 20}) {
		t.Errorf("request %+v", f.gcReq)
	}
	if code, _, stderr := runCLI(t, "gc", "--data-dir", dir, "--free", "lots"); code == 0 || stderr == "" {
		t.Errorf("--free lots: exit %d, stderr %q; want an error", code, stderr)
	}
}
