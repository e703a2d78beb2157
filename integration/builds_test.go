package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/store"
)

// maxBuilds is the --max-builds of every host in the build queue test: the
// ten leaves fit on two hosts, exactly.
const maxBuilds = 5

// buildJSON is one element of `tbfg-node builds --json`.
type buildJSON struct {
	ID         uint64            `json:"id"`
	Derivation string            `json:"derivation"`
	State      string            `json:"state"`
	Reason     string            `json:"reason"`
	Message    string            `json:"message"`
	Node       string            `json:"node"`
	LastNode   string            `json:"last_node"`
	Attempt    int               `json:"attempt"`
	Inputs     []string          `json:"inputs"`
	Outputs    map[string]string `json:"outputs"`
	Allocated  *time.Time        `json:"allocated"`
	Started    *time.Time        `json:"started"`
	Finished   *time.Time        `json:"finished"`
	Timeline   *buildTimeline    `json:"timeline"`
}

// submitJSON is what `tbfg-node submit --json` prints.
type submitJSON struct {
	Roots  []buildJSON `json:"roots"`
	Builds []buildJSON `json:"builds"`
}

// TestBuildQueueAcrossHosts submits a derivation graph on a follower of a
// three-host mesh and checks that every host agrees on one build per
// derivation, that the leader allocates ready builds only to live hosts
// within their max builds, and that killing a host re-queues its builds onto
// the survivors. Hosts run their builds, but the leaves take longer than the
// test, so allocations stay put until a host dies.
func TestBuildQueueAcrossHosts(t *testing.T) {
	c := newCluster(t,
		"--raft-profile", raftProfile(),
		"--remove-after", removeAfter.String(),
		"--gossip-interval", "1s",
		"--max-builds", fmt.Sprint(maxBuilds),
		"--system", nativeSystem(),
		"--log-level", "info")
	hosts, ids, ok := formThree(t, c)
	if !ok {
		return
	}
	// The leaves sleep far longer than the test runs, so the tops stay queued
	// behind them and the killed host's leaves are still unfinished when the
	// leader declares it lost. Stopping a host kills its builds.
	g := writeGraph(t, t.TempDir(), nativeSystem(), 10, 2, 3, 600)
	q := &queueCheck{g: g, maxBuilds: maxBuilds}
	leader := leaderOf(t, hosts, ids)
	submitter := nonLeader(t, hosts, ids)
	if !t.Run("submit-on-follower", func(t *testing.T) { submitTwice(t, submitter, g) }) {
		return
	}
	live := slices.Clone(hosts)
	if !t.Run("allocate", func(t *testing.T) { q.waitAllocated(t, live, ids) }) {
		return
	}
	var dead *host
	t.Run("kill-holder", func(t *testing.T) {
		dead = q.holder(t, live, ids, leader, submitter)
		t.Logf("killing %s (%s), which holds %d allocations", dead.name, ids[dead], q.held(ids[dead]))
		dead.kill()
		live = without(live, dead)
		q.dead = ids[dead]
		q.waitAllocated(t, live, ids)
	})
}

// submitTwice submits the graph on h, by arguments and then by standard
// input, and checks that the second submission shares every build.
func submitTwice(t *testing.T, h *host, g *drvGraph) {
	first := submit(t, h, "", g.files()...)
	if len(first.Builds) != len(g.inputs) || len(first.Roots) != len(g.inputs) {
		t.Fatalf("submit: %d roots, %d builds; want %d of each", len(first.Roots), len(first.Builds), len(g.inputs))
	}
	second := submit(t, h, strings.Join(g.files(), "\n")+"\n", "-")
	seen := map[uint64]string{}
	for i, b := range first.Roots {
		if other, dup := seen[b.ID]; dup {
			t.Errorf("build %d given to both %s and %s", b.ID, other, b.Derivation)
		}
		seen[b.ID] = b.Derivation
		if s := second.Roots[i]; s.ID != b.ID || s.Derivation != b.Derivation {
			t.Errorf("second submission of %s: build %d, want the first one's %d", b.Derivation, s.ID, b.ID)
		}
	}
}

// submit runs `tbfg-node submit --json args…` on h with stdin as its
// standard input.
func submit(t *testing.T, h *host, stdin string, args ...string) submitJSON {
	t.Helper()
	out, err := h.cliInput(stdin, append([]string{"submit", "--json"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	var res submitJSON
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("submit --json: %v\n%s", err, out)
	}
	return res
}

// queueCheck holds what the test knows of the build queue and checks the
// hosts' views against it.
type queueCheck struct {
	g         *drvGraph
	maxBuilds int
	dead      string      // the killed node's ID, once killed
	last      []buildJSON // the last view that passed waitAllocated
}

// waitAllocated waits until every host in live reports the same builds and
// all leaves are allocated to live hosts, checking the invariants on every
// view on the way.
func (q *queueCheck) waitAllocated(t *testing.T, live []*host, ids map[*host]string) {
	t.Helper()
	liveIDs := idsOf(live, ids)
	waitFor(t, removeAfter+60*time.Second, "every leaf allocated to a live host, on every host", func() error {
		var first []buildJSON
		for i, h := range live {
			builds, err := builds(h)
			if err != nil {
				return err
			}
			if err := q.invariants(builds); err != nil {
				t.Fatalf("%s: %v", h.name, err) // a broken invariant does not heal
			}
			if i == 0 {
				first = builds
			} else if !slices.EqualFunc(first, builds, sameBuild) {
				return fmt.Errorf("%s and %s disagree on the builds", live[0].name, h.name)
			}
		}
		if err := q.allocated(first, liveIDs); err != nil {
			return err
		}
		q.last = first
		return nil
	})
}

func sameBuild(a, b buildJSON) bool {
	return a.ID == b.ID && a.Derivation == b.Derivation && a.State == b.State && a.Node == b.Node
}

// invariants checks one host's view: every derivation exactly once, none
// lost; no node over its max builds; dependents queued while their inputs
// are not built. (The dead node keeps its allocations until the leader
// declares it lost; allocated then waits for them to move.)
func (q *queueCheck) invariants(builds []buildJSON) error {
	byDrv := map[string]buildJSON{}
	perNode := map[string]int{}
	for _, b := range builds {
		if _, dup := byDrv[b.Derivation]; dup {
			return fmt.Errorf("derivation %s has two builds", b.Derivation)
		}
		byDrv[b.Derivation] = b
		if b.Node != "" {
			perNode[b.Node]++
		}
	}
	if len(builds) != len(q.g.inputs) {
		return fmt.Errorf("%d builds, want %d", len(builds), len(q.g.inputs))
	}
	for p := range q.g.inputs {
		if _, ok := byDrv[string(p)]; !ok {
			return fmt.Errorf("derivation %s lost", p)
		}
	}
	for n, count := range perNode {
		if count > q.maxBuilds {
			return fmt.Errorf("node %s has %d builds, over its max of %d", n, count, q.maxBuilds)
		}
	}
	for _, top := range q.g.tops {
		if b := byDrv[string(top)]; b.State != "queued" {
			return fmt.Errorf("dependent %s is %s before its inputs were built", top, b.State)
		}
	}
	return nil
}

// allocated checks that every leaf is allocated to, or running on, one of
// live.
func (q *queueCheck) allocated(builds []buildJSON, live []string) error {
	for _, b := range builds {
		if !slices.Contains(q.g.leaves, store.Path(b.Derivation)) {
			continue
		}
		if b.State != "allocated" && b.State != "running" {
			return fmt.Errorf("leaf build %d is %s", b.ID, b.State)
		}
		if !slices.Contains(live, b.Node) {
			return fmt.Errorf("leaf build %d allocated to %s, not a live host", b.ID, b.Node)
		}
	}
	return nil
}

// holder returns a host other than the leader that holds allocations,
// preferring one that did not submit.
func (q *queueCheck) holder(t *testing.T, live []*host, ids map[*host]string, leader, submitter *host) *host {
	t.Helper()
	var pick *host
	for _, h := range live {
		if h == leader || q.held(ids[h]) == 0 {
			continue
		}
		if pick == nil || pick == submitter {
			pick = h
		}
	}
	if pick == nil {
		t.Fatal("no host but the leader holds allocations")
	}
	return pick
}

// held counts the allocations of node in the last view that passed.
func (q *queueCheck) held(node string) int {
	n := 0
	for _, b := range q.last {
		if b.Node == node {
			n++
		}
	}
	return n
}

// builds returns `tbfg-node builds --json` of h.
func builds(h *host) ([]buildJSON, error) {
	out, err := h.cli("builds", "--json")
	if err != nil {
		return nil, err
	}
	var bs []buildJSON
	if err := json.Unmarshal(out, &bs); err != nil {
		return nil, fmt.Errorf("%s: builds --json: %w", h.name, err)
	}
	if bs == nil {
		return nil, errors.New(h.name + ": builds --json: null")
	}
	return bs, nil
}
