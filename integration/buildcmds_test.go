package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/drvgraph"
	"github.com/tbfg/tbfg-node/store"
)

// TestBuildCommandsAcrossHosts checks log, retry and cancel against real
// processes on three namespace hosts: submit --wait of a graph with a build
// that fails on purpose exits 1 and names the failed build with `tbfg-node
// log`; that log is printed by every host, wherever the build ran; retry
// of the build that failed because of it runs the failed one again; cancel
// on one host stops a running build, ends a `log --follow` of it on
// another, and fails its dependent.
func TestBuildCommandsAcrossHosts(t *testing.T) {
	c := newCluster(t,
		"--raft-profile", raftProfile(),
		"--gossip-interval", "1s",
		"--max-builds", "2",
		"--system", nativeSystem(),
		"--log-level", "info")
	hosts, ids, ok := formThree(t, c)
	if !ok {
		return
	}
	follower := nonLeader(t, hosts, ids)
	g, dir := newGraph(t, drvgraph.Options{Chain: 1, Leaves: 2, Tops: 1, PerTop: 2, Fail: true})
	var broken, dependent uint64
	if !t.Run("submit-wait-fails", func(t *testing.T) { broken, dependent = submitFailing(t, follower, g, dir) }) {
		return
	}
	t.Run("log-everywhere", func(t *testing.T) {
		for _, h := range hosts {
			out, err := h.cli("log", fmt.Sprint(broken))
			if err != nil || !strings.Contains(string(out), "broken: failing on purpose") {
				t.Errorf("%s: log %d: %v\n%s\nwant the builder's message", h.name, broken, err, out)
			}
		}
	})
	t.Run("retry-dependent", func(t *testing.T) { retryDependent(t, hosts, broken, dependent) })
	t.Run("cancel-running", func(t *testing.T) { cancelRunning(t, hosts) })
}

// submitFailing runs submit --wait of g on h, which must exit 1 naming the
// failed build and the next steps, and returns the ids of the failing build
// and of its dependent.
func submitFailing(t *testing.T, h *host, g *drvgraph.Graph, dir string) (broken, dependent uint64) {
	out, err := h.cliLong(5*time.Minute, append([]string{"submit", "--wait"}, g.Files(dir)...)...)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("submit --wait of a graph with a failing build: %v; want exit 1\n%s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Split(l, "\t")
		if len(f) != 3 {
			continue
		}
		var id uint64
		fmt.Sscan(f[0], &id)
		switch {
		case f[2] == string(g.Failing) && f[1] == "failed":
			broken = id
		case f[2] == string(g.FailedDependent) && f[1] == "failed-dependency":
			dependent = id
		}
	}
	if broken == 0 || dependent == 0 {
		t.Fatalf("submit --wait did not report %s failed and %s failed-dependency:\n%s", g.Failing, g.FailedDependent, out)
	}
	for _, want := range []string{
		fmt.Sprintf("build %d failed (build-error): %s; see why with: tbfg-node log %d", broken, g.Failing, broken),
		fmt.Sprintf("build %d failed-dependency: %s; it needs build %d", dependent, g.FailedDependent, broken),
		fmt.Sprintf("2 of %d builds did not succeed; once fixed, run again with: tbfg-node retry %d", len(g.Order), broken),
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("submit --wait said %v; want %q", err, want)
		}
	}
	return broken, dependent
}

// retryDependent retries the dependent on one host and checks on another
// that the failing build it needs ran again (and failed again).
func retryDependent(t *testing.T, hosts []*host, broken, dependent uint64) {
	before := buildByID(t, hosts[2], broken, 0)
	out, err := hosts[0].cli("retry", "--json", fmt.Sprint(dependent))
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Index  uint64      `json:"index"`
		Builds []buildJSON `json:"builds"`
	}
	if err := json.Unmarshal(out, &res); err != nil || res.Index == 0 || len(res.Builds) != 1 || res.Builds[0].State != "failed-dependency" {
		t.Fatalf("retry --json: %v\n%s\nwant the dependent, still failed-dependency, and an index", err, out)
	}
	// Read at the retry's index, on another host: re-queued, or failed anew.
	if after := buildByID(t, hosts[2], broken, res.Index); after.Finished != nil && !after.Finished.After(*before.Finished) {
		t.Errorf("build %d read at the retry's index is still the old failure: %+v", broken, after)
	}
	waitFor(t, 2*time.Minute, "the retried build failed again", func() error {
		b := buildByID(t, hosts[1], broken, 0)
		if b.State != "failed" || b.Finished == nil || !b.Finished.After(*before.Finished) {
			return fmt.Errorf("build %d: %s, finished %v (before %v)", broken, b.State, b.Finished, before.Finished)
		}
		return nil
	})
}

// cancelRunning submits a build that sleeps and its dependent, follows its
// log on one host, cancels it on another and checks that the follower ends
// and the dependent fails.
func cancelRunning(t *testing.T, hosts []*host) {
	g, dir := newGraph(t, drvgraph.Options{Leaves: 1, Tops: 1, PerTop: 1, Sleep: 600})
	res := submit(t, hosts[1], "", g.Files(dir)...)
	var slow, top uint64
	for _, b := range res.Builds {
		switch store.Path(b.Derivation) {
		case g.Leaves[0]:
			slow = b.ID
		case g.Tops[0]:
			top = b.ID
		}
	}
	waitFor(t, time.Minute, "the slow build runs", func() error {
		if b := buildByID(t, hosts[0], slow, 0); b.State != "running" {
			return fmt.Errorf("build %d is %s", slow, b.State)
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute*timeScale())
	defer cancel()
	follow := exec.CommandContext(ctx, hosts[2].c.client, "log", "--data-dir", hosts[2].dataDir, "--follow", fmt.Sprint(slow))
	var stderr bytes.Buffer
	follow.Stderr = &stderr
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	out, err := hosts[0].cli("cancel", fmt.Sprint(slow))
	if want := regexp.MustCompile(fmt.Sprintf(`^%d\tcanceled\t%s\n$`, slow, regexp.QuoteMeta(string(g.Leaves[0])))); err != nil || !want.Match(out) {
		t.Errorf("cancel: %v, %q; want the build canceled", err, out)
	}
	if err := follow.Wait(); err != nil {
		t.Errorf("log --follow of the canceled build: %v: %s; want it to end cleanly", err, stderr.String())
	}
	waitFor(t, 30*time.Second, "the dependent of the canceled build failed on every host", func() error {
		for _, h := range hosts {
			if b := buildByID(t, h, top, 0); b.State != "failed-dependency" {
				return fmt.Errorf("%s: build %d is %s", h.name, top, b.State)
			}
		}
		return nil
	})
}

// buildByID reads build id on h with builds --json, once h has applied
// index (0: at once).
func buildByID(t *testing.T, h *host, id, index uint64) buildJSON {
	t.Helper()
	args := []string{"builds", "--json", "--id", fmt.Sprint(id)}
	if index > 0 {
		args = append(args, "--index", fmt.Sprint(index))
	}
	out, err := h.cli(args...)
	if err != nil {
		t.Fatal(err)
	}
	var bs []buildJSON
	if err := json.Unmarshal(out, &bs); err != nil || len(bs) != 1 {
		t.Fatalf("builds --id %d: %v\n%s", id, err, out)
	}
	return bs[0]
}
