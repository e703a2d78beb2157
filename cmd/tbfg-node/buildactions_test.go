package main

import (
	"slices"
	"strings"
	"testing"
)

func TestLogCancelRetry(t *testing.T) {
	f := newFakeNode(1, "1:/gnu/store/aaaa-leaf.drv", "2:/gnu/store/bbbb-top.drv", "3:/gnu/store/cccc-done.drv")
	f.applied = f.index
	b := f.builds[2]
	b.State, b.Cause = "failed-dependency", 1
	f.builds[2] = b
	b = f.builds[3]
	b.State = "succeeded"
	f.builds[3] = b
	f.logs[1] = "building leaf\nfailing\n"
	dir := f.serve(t)
	for _, tc := range []struct {
		args           []string
		code           int
		stdout, stderr string
	}{
		{[]string{"log", "--data-dir", dir, "1"}, 0, "building leaf\nfailing\n", ""},
		{[]string{"log", "1", "--data-dir", dir, "--follow"}, 0, "building leaf\nfailing\n(followed)\n", ""},
		{[]string{"log", "--data-dir", dir, "2"}, 1, "",
			"tbfg-node log: no log: build 2 has not started (a build has a log once a node has started it: see its state with tbfg-node builds --id)\n"},
		{[]string{"log", "--data-dir", dir}, 2, "", "tbfg-node log: want one build id, got 0 arguments (see tbfg-node log -h)\n"},
		{[]string{"log", "--data-dir", dir, "x"}, 2, "", `tbfg-node log: build id "x": want one build number (see tbfg-node log -h)` + "\n"},
		{[]string{"cancel", "--data-dir", dir, "1,3"}, 0, "1\tcanceled\t/gnu/store/aaaa-leaf.drv\n3\tsucceeded\t/gnu/store/cccc-done.drv\n",
			"tbfg-node cancel: build 3 had already finished (succeeded); nothing to cancel\n"},
		{[]string{"cancel", "--data-dir", dir, "9"}, 1, "",
			"tbfg-node cancel: no such build: 9 (tbfg-node builds lists the builds this node knows)\n"},
		{[]string{"cancel", "--data-dir", dir, "0"}, 2, "",
			`tbfg-node cancel: build id "0": want a build number (tbfg-node builds lists them)` + "\n"},
		{[]string{"retry", "--data-dir", dir}, 2, "", "tbfg-node retry: no build id given (tbfg-node builds lists them)\n"},
		{[]string{"retry", "--data-dir", dir, "2"}, 0, "2\tfailed-dependency\t/gnu/store/bbbb-top.drv\n",
			"tbfg-node retry: build 2 needs build 1, which failed: that one was re-queued, and 2 follows once it succeeds\n"},
		{[]string{"builds", "--data-dir", dir, "--id", "x"}, 2, "", `tbfg-node builds: --id "x": want a build number (tbfg-node builds lists them)` + "\n"},
		{[]string{"builds", "--data-dir", dir, "extra"}, 2, "", `tbfg-node builds: unexpected argument "extra": this command takes flags only (see tbfg-node builds -h)` + "\n"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, stderr := runCLI(t, tc.args...)
			if code != tc.code || out != tc.stdout || stderr != tc.stderr {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, %q, %q", code, out, stderr, tc.code, tc.stdout, tc.stderr)
			}
		})
	}
	if want := []string{"cancel[1 3]", "cancel[9]", "retry[2]"}; !slices.Equal(f.actions, want) {
		t.Errorf("actions %q, want %q", f.actions, want)
	}
}
