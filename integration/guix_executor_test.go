package integration

import (
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/drvgraph"
	"github.com/tbfg/tbfg-node/internal/guixtest"
	"github.com/tbfg/tbfg-node/store"
)

// The limits of the guix host in TestGuixExecutorAcrossHosts.
const (
	guixBuildTimeout = 15 * time.Second
	guixMaxSilent    = 4 * time.Second
)

// executorSpecs is the graph of TestGuixExecutorAcrossHosts. Features pin
// each derivation to the guix host or the builtin ones, so that inputs
// cross between them both ways (a1 → g1 → b1 → g2); u1 and u2 go anywhere;
// the last three fail on the guix host, each in its own way.
var executorSpecs = []drvSpec{
	{name: "a1", feature: "tbfg-builtin"},
	{name: "a2", feature: "tbfg-builtin"},
	{name: "g1", inputs: []string{"a1"}, feature: "tbfg-guix"},
	{name: "b1", inputs: []string{"g1"}, feature: "tbfg-builtin"},
	{name: "g2", inputs: []string{"b1", "a2"}, feature: "tbfg-guix"},
	{name: "u1", inputs: []string{"g1"}},
	{name: "u2", inputs: []string{"a2"}},
	{name: "top", inputs: []string{"g2", "u1", "u2"}, feature: "tbfg-guix"},
	{name: "fails", feature: "tbfg-guix", script: "echo failing on purpose\nexit 3"},
	{name: "silent", feature: "tbfg-guix", script: "echo going quiet\nsleep 600"},
	{name: "runs-forever", feature: "tbfg-guix", script: "while :; do echo tick; sleep 1; done"},
}

// executorFailures are the failing derivations of executorSpecs: the
// reason their build fails with, and what its message says, in the words
// of guix-daemon.
var executorFailures = map[string]struct{ reason, message string }{
	"fails":        {"build-error", "failed with exit code 3"},
	"silent":       {"timeout", fmt.Sprintf("timed out after %d seconds of silence", int(guixMaxSilent.Seconds()))},
	"runs-forever": {"timeout", fmt.Sprintf("timed out after %d seconds", int(guixBuildTimeout.Seconds()))},
}

// TestGuixExecutorAcrossHosts runs a mesh of three namespace hosts, the
// second (which joins) with --executor guix and a guix-daemon of its own (in its network
// namespace, so that the daemon reaches the node's substitute server on
// 127.0.0.1), the others with the builtin executor. Every derivation's
// builder is busybox, a store item the submitted graph carries. The graph
// has inputs crossing between the executors both ways; it checks that:
//   - it builds, every derivation on a host it is pinned to, the guix
//     host's through guix-daemon, which substitutes the .drv files and the
//     inputs built elsewhere from the mesh;
//   - every output of the guix host is valid in the daemon's store, with
//     the NarHash, NarSize and references its narinfo gives on the other
//     hosts, and the inputs it took from the other hosts are there;
//   - a failing builder, --max-silent and --build-timeout are passed to the
//     daemon and the failures classified from its messages;
//   - the logs of the guix host's builds, failed ones too, are kept and
//     served by the other hosts.
func TestGuixExecutorAcrossHosts(t *testing.T) {
	requireNamespaces(t)
	guixtest.Require(t)
	requireTools(t, "curl", "curl")
	c := newCluster(t,
		"--raft-profile", raftProfile(),
		"--gossip-interval", "1s",
		"--max-builds", "4",
		"--system", nativeSystem(),
		"--log-level", "info")
	for range 3 {
		c.addHost().env = []string{noSystemBus}
	}
	hosts := c.hosts
	gx := hosts[1] // joins the mesh: the first host inits it
	d := startGuixDaemon(t, gx, guixtest.DaemonOptions{})
	gx.env = append(gx.env, "GUIX_DAEMON_SOCKET="+d.Socket)
	ids := map[*host]string{}
	if !t.Run("form", func(t *testing.T) {
		formMesh(t, hosts, ids, func(h *host) []string {
			if h == gx {
				return []string{"--executor", "guix", "--guix", guixtest.Guix, "--feature", "tbfg-guix",
					"--build-timeout", guixBuildTimeout.String(), "--max-silent", guixMaxSilent.String()}
			}
			return []string{"--feature", "tbfg-builtin"}
		})
	}) {
		return
	}
	authorize(t, gx, d)
	busybox := busyboxSource(t)
	g, dir := specGraph(t, executorSpecs, busybox)
	deleteFromStore(t, d, func() []store.Path { return append(outputs(g), g.Order...) })
	names := map[store.Path]string{}
	for i, drv := range g.Order {
		names[drv] = executorSpecs[i].name
	}
	if !t.Run("build", func(t *testing.T) { buildWithFailures(t, hosts, g, dir, names) }) {
		return
	}
	builtOn := builders(t, hosts, g)
	other := hosts[0] // a builtin host, whose substitute server the checks ask
	t.Run("pinned", func(t *testing.T) { checkPinned(t, g, names, builtOn, gx) })
	var guixOuts []store.Path
	for i, drv := range g.Order {
		if executorSpecs[i].feature == "tbfg-guix" && executorFailures[names[drv]].reason == "" {
			guixOuts = append(guixOuts, g.Output(drv))
		}
	}
	t.Run("daemon-store", func(t *testing.T) {
		checkRecorded(t, d, hosts[2], other, guixOuts)
		checkInputsSubstituted(t, d, gx, g, builtOn)
	})
	t.Run("logs", func(t *testing.T) { checkGuixLogs(t, gx, other, hosts[2], g, names) })
}

// buildWithFailures submits g on the second host (the guix host) and waits until every
// host agrees on its outcome: the derivations of executorFailures failed
// with their reason and the daemon's words in the message, the others
// succeeded.
func buildWithFailures(t *testing.T, hosts []*host, g *drvgraph.Graph, dir string, names map[store.Path]string) {
	if res := submit(t, hosts[1], "", g.Files(dir)...); len(res.Builds) != len(g.Order) {
		t.Fatalf("submit: %d builds, want %d", len(res.Builds), len(g.Order))
	}
	var last []buildJSON
	waitFor(t, 3*time.Minute, "every build done as expected, on every host", func() error {
		for _, h := range hosts {
			bs, err := builds(h)
			if err != nil {
				return err
			}
			if err := checkOutcomes(bs, names); err != nil {
				return fmt.Errorf("%s: %w", h.name, err)
			}
			last = bs
		}
		return nil
	})
	for _, b := range last {
		if b.State == "failed" {
			t.Logf("%s: %s: %s", names[store.Path(b.Derivation)], b.Reason, b.Message)
		}
	}
}

// checkOutcomes checks one host's view of the builds.
func checkOutcomes(bs []buildJSON, names map[store.Path]string) error {
	if len(bs) != len(names) {
		return fmt.Errorf("%d builds, want %d", len(bs), len(names))
	}
	for _, b := range bs {
		name := names[store.Path(b.Derivation)]
		want, fails := executorFailures[name]
		switch {
		case !fails && b.State != "succeeded":
			return fmt.Errorf("%s is %s (%s: %s)", name, b.State, b.Reason, b.Message)
		case fails && b.State != "failed":
			return fmt.Errorf("%s is %s, want failed", name, b.State)
		case fails && (b.Reason != want.reason || !strings.Contains(b.Message, want.message)):
			return fmt.Errorf("%s failed with %s: %q; want %s, saying %q", name, b.Reason, b.Message, want.reason, want.message)
		case b.Attempt != 1:
			return fmt.Errorf("%s ended on attempt %d, want 1", name, b.Attempt)
		}
	}
	return nil
}

// checkPinned checks that each derivation ran on a host with its feature
// (by the log it keeps), and that inputs crossed between hosts.
func checkPinned(t *testing.T, g *drvgraph.Graph, names map[store.Path]string, builtOn map[string]string, gx *host) {
	for i, drv := range g.Order {
		on := builtOn[string(drv)]
		switch executorSpecs[i].feature {
		case "tbfg-guix":
			if on != gx.name {
				t.Errorf("%s ran on %s, want %s", names[drv], on, gx.name)
			}
		case "tbfg-builtin":
			if on == gx.name {
				t.Errorf("%s ran on the guix host", names[drv])
			}
		}
	}
	checkCrossing(t, g, builtOn)
}

// checkInputsSubstituted checks that the inputs the guix host's builds
// took from other hosts are valid in the daemon's store: it substituted
// them from the mesh.
func checkInputsSubstituted(t *testing.T, d *guixtest.PrivateDaemon, gx *host, g *drvgraph.Graph, builtOn map[string]string) {
	var taken []store.Path
	for _, drv := range g.Order {
		for _, in := range g.Inputs[drv] {
			if builtOn[string(drv)] == gx.name && builtOn[string(in)] != gx.name {
				taken = append(taken, g.Output(in))
			}
		}
	}
	if len(taken) == 0 {
		t.Fatal("the guix host took no input from another host")
	}
	if got := valid(d, taken...); len(got) != len(taken) {
		t.Errorf("of the inputs taken from other hosts %v, only %v are valid in the daemon's store", taken, got)
	}
}

// checkGuixLogs checks the logs the guix host gx kept of its builds, and
// that server serves them to client: each holds what the builder printed.
func checkGuixLogs(t *testing.T, gx, server, client *host, g *drvgraph.Graph, names map[store.Path]string) {
	want := map[string]string{"g1": "g1: built", "fails": "failing on purpose", "silent": "going quiet", "runs-forever": "tick"}
	for _, drv := range g.Order {
		text, ok := want[names[drv]]
		if !ok {
			continue
		}
		kept := readGzip(t, filepath.Join(gx.dataDir, "logs", drv.Base()+".gz"))
		served, err := curl(client, substituteURL(server)+"/log/"+drv.Base())
		if err != nil {
			t.Errorf("log of %s from %s: %v", names[drv], server.name, err)
		}
		if !strings.Contains(kept, text) || string(served) != kept {
			t.Errorf("log of %s: kept %q, served %q; want both holding %q", names[drv], kept, served, text)
		}
	}
}

// readGzip returns the text of a gzip file.
func readGzip(t *testing.T, name string) string {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return string(b)
}
