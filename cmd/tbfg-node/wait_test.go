package main

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/node/adminapi"
)

// runCLI runs the command line args and returns its exit code and output.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := run(ctx, &stdio{in: strings.NewReader(""), out: &out, err: &errOut}, args)
	return code, out.String(), errOut.String()
}

// TestSubmitWait follows a submission on a node that plays a follower: its
// builds exist only once the node applied the index the submit answered.
// Without a terminal, the output is the submitted roots, then one line per
// build as it finishes, in the format of earlier versions, byte for byte.
func TestSubmitWait(t *testing.T) {
	const (
		leaf = "1:/gnu/store/aaaa-leaf.drv"
		top  = "2:/gnu/store/bbbb-top.drv"
	)
	for _, tc := range []struct {
		name       string
		steps      []step
		wantCode   int
		wantOut    string
		wantStderr string
	}{
		{"all succeed", []step{{states: map[uint64]string{1: "running"}}, {states: map[uint64]string{1: "succeeded", 2: "running"}},
			{states: map[uint64]string{2: "succeeded"}}}, 0,
			"2\tsubmitted\t/gnu/store/bbbb-top.drv\n1\tsucceeded\t/gnu/store/aaaa-leaf.drv\n2\tsucceeded\t/gnu/store/bbbb-top.drv\n", ""},
		{"one fails", []step{{states: map[uint64]string{1: "failed", 2: "failed-dependency"}}}, 1,
			"2\tsubmitted\t/gnu/store/bbbb-top.drv\n1\tfailed\t/gnu/store/aaaa-leaf.drv\n2\tfailed-dependency\t/gnu/store/bbbb-top.drv\n",
			"tbfg-node submit: build 1 failed (build-error): /gnu/store/aaaa-leaf.drv; see why with: tbfg-node log 1\n" +
				"tbfg-node submit: build 2 failed-dependency: /gnu/store/bbbb-top.drv; it needs build 1\n" +
				"tbfg-node submit: 2 of 2 builds did not succeed; once fixed, run again with: tbfg-node retry 1\n"},
		{"reset", []step{{states: map[uint64]string{1: "succeeded"}}, {states: map[uint64]string{2: "succeeded"}, reset: true}}, 0,
			"2\tsubmitted\t/gnu/store/bbbb-top.drv\n1\tsucceeded\t/gnu/store/aaaa-leaf.drv\n2\tsucceeded\t/gnu/store/bbbb-top.drv\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeNode(1, leaf, top)
			f.steps = tc.steps
			dir := f.serve(t)
			code, out, stderr := runCLI(t, "submit", "--data-dir", dir, "--wait", "--priority", "3", "/gnu/store/bbbb-top.drv")
			if code != tc.wantCode || out != tc.wantOut || stderr != tc.wantStderr {
				t.Errorf("exit %d, stdout:\n%s\nstderr:\n%s\nwant exit %d, stdout:\n%s\nstderr:\n%s", code, out, stderr, tc.wantCode, tc.wantOut, tc.wantStderr)
			}
			if f.req.Priority != 3 || !slices.Equal(f.req.Derivations, []string{"/gnu/store/bbbb-top.drv"}) {
				t.Errorf("request %+v", f.req)
			}
			// One read after the submission, then one per change: no polling.
			if want := 1 + len(tc.steps); f.reads != want {
				t.Errorf("%d reads of builds, want %d", f.reads, want)
			}
		})
	}
}

func TestSubmitWaitJSON(t *testing.T) {
	f := newFakeNode(1, "1:/gnu/store/aaaa-leaf.drv", "2:/gnu/store/bbbb-top.drv")
	f.steps = []step{{states: map[uint64]string{1: "succeeded", 2: "succeeded"}}}
	code, out, stderr := runCLI(t, "submit", "--data-dir", f.serve(t), "--wait", "--json", "/gnu/store/bbbb-top.drv")
	var got []adminapi.BuildView
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != 0 || len(got) != 2 || got[1].State != "succeeded" {
		t.Errorf("exit %d, %v, stdout %s, stderr %s; want the two finished builds as JSON", code, err, out, stderr)
	}
}

func TestSubmitWithoutNode(t *testing.T) {
	dir := t.TempDir()
	code, _, stderr := runCLI(t, "submit", "--data-dir", dir, "/gnu/store/bbbb-top.drv")
	want := "tbfg-node submit: no node is running in " + dir + " (start it with tbfg-node run, or name its data dir with --data-dir)\n"
	if code != 1 || stderr != want {
		t.Errorf("exit %d, %q; want 1 and %q", code, stderr, want)
	}
}
