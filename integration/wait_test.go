package integration

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/drvgraph"
)

// TestSubmitWaitOnFollower is the headline flow "submit from any node": on
// three namespace hosts meshed by init and join, with the builtin executor,
// `submit --wait` on a follower must wait for the whole graph and report
// every build as it finishes. The follower's replica applies the submission
// after the leader committed it, so a read that does not wait for the
// submission's Raft index finds builds it does not know yet.
func TestSubmitWaitOnFollower(t *testing.T) {
	c := newCluster(t,
		"--raft-profile", raftProfile(),
		"--gossip-interval", "1s",
		"--max-builds", "4",
		"--system", nativeSystem(),
		"--log-level", "info")
	hosts, ids, ok := formThree(t, c)
	if !ok {
		return
	}
	// 1 + 20 + 3 = 24 derivations, all named on the command line.
	g, dir := newGraph(t, drvgraph.Options{Chain: 1, Leaves: 20, Tops: 3, PerTop: 5})
	follower := nonLeader(t, hosts, ids)
	t.Logf("submitting on %s, a follower", follower.name)
	out, err := follower.cliLong(5*time.Minute, append([]string{"submit", "--wait"}, g.Files(dir)...)...)
	if err != nil {
		t.Fatalf("%v\nstdout:\n%s", err, out)
	}
	checkWaitOutput(t, string(out), g)
	waitFor(t, 30*time.Second, "every host sees every build succeeded", func() error {
		for _, h := range hosts {
			bs, err := builds(h)
			if err != nil {
				return err
			}
			if err := allSucceeded(bs, g); err != nil {
				return fmt.Errorf("%s: %w", h.name, err)
			}
		}
		return nil
	})
}

// checkWaitOutput checks what `submit --wait` printed without a terminal:
// a line "ID<TAB>STATE<TAB>DRV" for each requested derivation, then one
// "ID<TAB>succeeded<TAB>DRV" line per build of the graph, each once.
func checkWaitOutput(t *testing.T, out string, g *drvgraph.Graph) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	n := len(g.Order)
	if len(lines) != 2*n {
		t.Fatalf("submit --wait printed %d lines, want %d (one per submitted derivation, then one per finished build):\n%s", len(lines), 2*n, out)
	}
	idOf := map[string]string{}
	for _, l := range lines[:n] {
		f := strings.Split(l, "\t")
		if len(f) != 3 {
			t.Fatalf("submitted line %q: want ID, state and derivation", l)
		}
		idOf[f[2]] = f[0]
	}
	done := map[string]bool{}
	for _, l := range lines[n:] {
		f := strings.Split(l, "\t")
		if len(f) != 3 || f[1] != "succeeded" {
			t.Errorf("finished line %q: want ID, succeeded and derivation", l)
			continue
		}
		if done[f[2]] {
			t.Errorf("build of %s reported twice", f[2])
		}
		done[f[2]] = true
		if id, ok := idOf[f[2]]; ok && id != f[0] {
			t.Errorf("build of %s finished as %s, submitted as %s", f[2], f[0], id)
		}
	}
	for _, p := range g.Order {
		if !done[string(p)] {
			t.Errorf("no finished line for %s", p)
		}
	}
}

// cliLong is host.cli for a command that runs up to timeout, such as
// submit --wait.
func (h *host) cliLong(timeout time.Duration, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout*timeScale())
	defer cancel()
	all := append([]string{args[0], "--data-dir", h.dataDir}, args[1:]...)
	cmd := exec.CommandContext(ctx, h.c.client, all...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s: tbfg-node %s: %w: %s", h.name, args[0], err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
