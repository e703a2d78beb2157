package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/citest"
	"github.com/tbfg/tbfg-node/internal/drvgraph"
	"github.com/tbfg/tbfg-node/scheduler"
)

// oldCommit is the tbfg-node the upgrade test starts from: the last
// released state, before nodes gossiped their replicated format. Move it
// forward when a release is made, so that the test always runs the release
// before HEAD next to HEAD.
const oldCommit = "f55682c"

// TestRollingUpgrade forms a mesh of two nodes built from oldCommit (one
// leads) and one built from HEAD, submits builds on it, then restarts each
// old node in turn on HEAD's binary with its data dir kept, submitting more
// builds before and between the restarts. At the end every build of every
// graph succeeded exactly once on every host's replica, every output is
// served by every host, no node exited on its own, and none refused the
// replicated state.
func TestRollingUpgrade(t *testing.T) {
	requireNamespaces(t)
	requireTools(t, "curl", "curl")
	old := buildOldBinary(t)
	c := newCluster(t,
		"--raft-profile", raftProfile(),
		"--remove-after", "30s",
		"--gossip-interval", "1s",
		"--max-builds", "2",
		"--replicas", "2",
		"--system", nativeSystem(),
		"--log-level", "info")
	current := c.bin
	for range 3 {
		c.addHost()
	}
	h1, h2, h3 := c.hosts[0], c.hosts[1], c.hosts[2]
	ids := map[*host]string{}
	if !t.Run("form-mixed", func(t *testing.T) { formMixed(t, c, old, current, ids) }) {
		return
	}
	var graphs []*upgradeGraph
	submitOn := func(t *testing.T, h *host, opts drvgraph.Options) {
		g, dir := newGraph(t, opts)
		if res := submit(t, h, "", g.Files(dir)...); len(res.Builds) != len(g.Order) {
			t.Fatalf("submit on %s: %d builds, want %d", h.name, len(res.Builds), len(g.Order))
		}
		graphs = append(graphs, &upgradeGraph{g: g, on: h.name})
	}
	quick := drvgraph.Options{Leaves: 4, Tops: 2, PerTop: 2, Sleep: 1}
	t.Run("builds-mixed", func(t *testing.T) {
		submitOn(t, h3, quick) // the new follower, through the old leader
		submitOn(t, h1, quick) // the old leader itself
		waitGraphs(t, c.hosts, graphs)
		checkGossipedFormats(t, h3, ids, map[*host]int{h1: 0, h2: 0, h3: scheduler.FormatVersion})
	})
	// Slow enough to be running while the leader restarts.
	submitOn(t, h2, drvgraph.Options{Leaves: 4, Tops: 1, PerTop: 4, Sleep: 5})
	waitFor(t, 60*time.Second, "a build of the slow graph running", func() error {
		bs, err := builds(h1)
		if err != nil {
			return err
		}
		for _, b := range bs {
			if b.State == "running" {
				return nil
			}
		}
		return errors.New("none running")
	})
	c.bin = current
	for _, h := range []*host{h1, h2} {
		if !t.Run("upgrade-"+h.name, func(t *testing.T) {
			if err := h.signal(syscall.SIGTERM, time.Minute); err != nil {
				t.Fatalf("%s (old binary) on SIGTERM: %v; want exit status 0", h.name, err)
			}
			restart(t, without(c.hosts, h), h, ids)
			submitOn(t, h, quick)
		}) {
			return
		}
	}
	t.Run("complete", func(t *testing.T) {
		waitGraphs(t, c.hosts, graphs)
		checkGossipedFormats(t, h1, ids, map[*host]int{h1: scheduler.FormatVersion, h2: scheduler.FormatVersion, h3: scheduler.FormatVersion})
	})
	t.Run("fetch", func(t *testing.T) {
		for _, g := range graphs {
			fetchEverywhere(t, c.hosts, g.g, t.TempDir())
		}
	})
	t.Run("no-node-failed", func(t *testing.T) {
		for _, h := range c.hosts {
			if !h.running() {
				t.Errorf("%s exited", h.name)
			}
			for _, bad := range []string{"panic:", "cannot read the replicated state", ErrMeshTooOldText} {
				if h.out.contains(bad) {
					t.Errorf("%s logged %q", h.name, bad)
				}
			}
		}
	})
}

// ErrMeshTooOldText is what a node logs when it refuses an older mesh.
const ErrMeshTooOldText = "mesh too old for this tbfg-node"

// upgradeGraph is one graph the upgrade test submitted, and where.
type upgradeGraph struct {
	g  *drvgraph.Graph
	on string
}

// formMixed runs init on h1 and join on h2 with the old binary, and join on
// h3 with the current one, and waits for one mesh of the three.
func formMixed(t *testing.T, c *cluster, old, current string, ids map[*host]string) {
	h1, h2, h3 := c.hosts[0], c.hosts[1], c.hosts[2]
	c.bin = old
	h1.start(t, "init")
	ids[h1] = waitRunning(t, h1).ID
	secret := readSecret(t, h1)
	h2.start(t, "join", "--secret", secret)
	ids[h2] = waitRunning(t, h2).ID
	c.bin = current
	h3.start(t, "join", "--secret", secret)
	ids[h3] = waitRunning(t, h3).ID
	waitFor(t, 90*time.Second, "one mesh of two old nodes and a new one", func() error {
		return agree(c.hosts, idsOf(c.hosts, ids), true)
	})
	if l := leaderOf(t, c.hosts, ids); l != h1 {
		t.Fatalf("%s leads; want the old binary on %s, which made the mesh", l.name, h1.name)
	}
}

// waitGraphs waits until every host's replica has every build of graphs
// succeeded, exactly one build per derivation and no other build, and the
// replicas agree on each build's id, state and node.
func waitGraphs(t *testing.T, hosts []*host, graphs []*upgradeGraph) {
	t.Helper()
	waitFor(t, 180*time.Second, fmt.Sprintf("the %d graphs built, on every host", len(graphs)), func() error {
		var first []buildJSON
		for _, h := range hosts {
			bs, err := builds(h)
			if err != nil {
				return err
			}
			if err := succeededOnceAll(bs, graphs); err != nil {
				return fmt.Errorf("%s: %w", h.name, err)
			}
			if first == nil {
				first = bs
				continue
			}
			for i := range bs {
				if !sameBuild(bs[i], first[i]) {
					return fmt.Errorf("%s and %s disagree on build %d: %+v and %+v", hosts[0].name, h.name, bs[i].ID, first[i], bs[i])
				}
			}
		}
		return nil
	})
}

// succeededOnceAll checks one host's builds against graphs: one build per
// derivation of any of them, each succeeded, and nothing else.
func succeededOnceAll(bs []buildJSON, graphs []*upgradeGraph) error {
	want := map[string]string{}
	for _, g := range graphs {
		for _, d := range g.g.Order {
			want[string(d)] = g.on
		}
	}
	if len(bs) != len(want) {
		return fmt.Errorf("%d builds, want %d", len(bs), len(want))
	}
	seen := map[string]bool{}
	for _, b := range bs {
		if _, ok := want[b.Derivation]; !ok || seen[b.Derivation] {
			return fmt.Errorf("build %d of %s: in no graph, or a second build", b.ID, b.Derivation)
		}
		seen[b.Derivation] = true
		if b.State != "succeeded" {
			return fmt.Errorf("build %d of %s (submitted on %s) is %s", b.ID, b.Derivation, want[b.Derivation], b.State)
		}
	}
	return nil
}

// checkGossipedFormats checks the replicated format each host's node
// gossips, as h's `nodes --json` shows it: 0 for a binary older than the
// field.
func checkGossipedFormats(t *testing.T, h *host, ids map[*host]string, want map[*host]int) {
	t.Helper()
	waitFor(t, 30*time.Second, "each member's gossiped format", func() error {
		out, err := h.cli("nodes", "--json")
		if err != nil {
			return err
		}
		var nodes []struct {
			ID      string `json:"id"`
			Version string `json:"version"`
			Format  int    `json:"format"`
		}
		if err := json.Unmarshal(out, &nodes); err != nil {
			return fmt.Errorf("nodes --json: %w", err)
		}
		got := map[string]int{}
		for _, n := range nodes {
			got[n.ID] = n.Format
		}
		var errs []error
		for o, f := range want {
			if g, ok := got[ids[o]]; !ok || g != f {
				errs = append(errs, fmt.Errorf("%s gossips format %d (listed: %v); want %d", o.name, g, ok, f))
			}
		}
		return errors.Join(errs...)
	})
}

// buildOldBinary checks oldCommit out into a git worktree under the test's
// temporary directory and builds its cmd/tbfg-node there, with the module
// cache of this build. It skips outside a git checkout that has the
// commit, also under CI=true: how CI checks the project out (an archive, a
// shallow clone) is not this project's to choose, unlike the tools it
// installs. The message says what is missing.
func buildOldBinary(t *testing.T) string {
	t.Helper()
	citest.Tool(t, "git", "git")
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Skipf("not in a git checkout, so there is no %s to build: %v", oldCommit, err)
	}
	repo := strings.TrimSpace(string(top))
	if err := exec.Command("git", "-C", repo, "cat-file", "-e", oldCommit+"^{commit}").Run(); err != nil {
		t.Skipf("commit %s is not in this checkout (a shallow clone? git fetch --unshallow)", oldCommit)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if out, err := exec.Command("git", "-C", repo, "worktree", "add", "--detach", src, oldCommit).CombinedOutput(); err != nil {
		t.Fatalf("git worktree add %s: %v\n%s", oldCommit, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("git", "-C", repo, "worktree", "remove", "--force", src).CombinedOutput(); err != nil {
			t.Errorf("git worktree remove: %v\n%s", err, out)
		}
	})
	bin := filepath.Join(dir, "tbfg-node-"+oldCommit)
	start := time.Now()
	build := exec.Command("go", "build", "-o", bin, "./cmd/tbfg-node")
	build.Dir = src
	build.Env = append(os.Environ(), "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build at %s: %v\n%s", oldCommit, err, out)
	}
	t.Logf("built tbfg-node at %s in %s", oldCommit, time.Since(start).Round(time.Second))
	return bin
}
