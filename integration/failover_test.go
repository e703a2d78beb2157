package integration

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/drvgraph"
	"github.com/tbfg/tbfg-node/store"
)

// failoverSleep is how long the slow leaves of the failover graph build:
// long enough that a host is still running one when it is killed, after its
// fast leaves were published and copied.
const failoverSleep = 8

// TestFailover runs three namespace hosts with the builtin executor, submits
// a graph on the leader and kills -9 another host while it runs a build,
// once every output it had published was copied to another host. The graph
// must complete on the two survivors, the killed host's interrupted builds
// re-run there while the builds it had published are not run again, and
// every output, those of the killed host included, must be served by each
// survivor's substitute server with a NAR that verifies.
func TestFailover(t *testing.T) {
	requireNamespaces(t)
	requireTools(t, "curl", "curl")
	c := newCluster(t,
		"--raft-profile", raftProfile(),
		"--remove-after", removeAfter.String(),
		"--gossip-interval", "1s",
		"--max-builds", "2",
		"--replicas", "2",
		"--system", nativeSystem(),
		"--log-level", "info")
	hosts, ids, ok := formThree(t, c)
	if !ok {
		return
	}
	g, dir := newGraph(t, drvgraph.Options{Chain: 1, Leaves: 12, Tops: 3, PerTop: 4, SlowEvery: 2, SlowSleep: failoverSleep})
	submitter := leaderOf(t, hosts, ids)
	if res := submit(t, submitter, "", g.Files(dir)...); len(res.Builds) != len(g.Order) {
		t.Fatalf("submit: %d builds, want %d", len(res.Builds), len(g.Order))
	}
	var k killed
	if !t.Run("kill-builder", func(t *testing.T) { k = killBuilder(t, hosts, ids, submitter, leafKinds(g)) }) {
		return
	}
	live := without(hosts, k.host)
	if !t.Run("complete", func(t *testing.T) { waitCompleted(t, live, ids, g, k) }) {
		return
	}
	t.Run("fetch-from-survivors", func(t *testing.T) { fetchEverywhere(t, live, g, t.TempDir()) })
}

// killed is what the test knew of the killed host when it killed it.
type killed struct {
	host      *host
	id        string
	published []buildJSON // succeeded there, outputs copied elsewhere
	running   []buildJSON // slow leaves it had just started
}

// leafKinds maps the .drv of every leaf of g to whether it is slow.
func leafKinds(g *drvgraph.Graph) map[string]bool {
	slow := map[string]bool{}
	for i, p := range g.Leaves {
		slow[string(p)] = i%2 == 1 // SlowEvery 2
	}
	return slow
}

// killBuilder waits until a host other than the submitter runs a slow
// build that has far from finished, and every build it published has its
// outputs recorded by another host as a copy it holds, then kills it with
// SIGKILL.
func killBuilder(t *testing.T, hosts []*host, ids map[*host]string, submitter *host, slow map[string]bool) killed {
	var k killed
	waitFor(t, 90*time.Second, "a host running a build, with copies of what it published", func() error {
		bs, err := builds(submitter)
		if err != nil {
			return err
		}
		var errs []error
		for _, h := range without(hosts, submitter) {
			var err error
			if k, err = killable(h, ids[h], hosts, bs, slow); err == nil {
				return nil
			}
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
	t.Logf("killing %s (%s): %d builds running, %d published and copied",
		k.host.name, k.id, len(k.running), len(k.published))
	k.host.kill()
	return k
}

// killable checks that h runs a slow leaf and published at least one
// build, each of whose outputs another host logged as a copy it holds (it
// logs after its HolderAdded committed). The slow leaves it runs must have
// started less than half their sleep ago, and it must have no top: neither
// can finish, and publish an output nothing copied and nothing needs again,
// between this look and the kill. (A fast leaf that does is rebuilt for its
// top.)
func killable(h *host, id string, hosts []*host, bs []buildJSON, slow map[string]bool) (killed, error) {
	k := killed{host: h, id: id}
	for _, b := range bs {
		switch {
		case b.Node != id:
			if b.State == "succeeded" && b.LastNode == id {
				k.published = append(k.published, b)
			}
		case !slow[b.Derivation]:
			if _, leaf := slow[b.Derivation]; !leaf {
				return k, fmt.Errorf("%s: has build %d of %s, not a leaf", h.name, b.ID, b.Derivation)
			}
		case b.State == "running":
			if b.Started == nil || time.Since(*b.Started) > failoverSleep*time.Second/2 {
				return k, fmt.Errorf("%s: slow build %d has run for too long", h.name, b.ID)
			}
			k.running = append(k.running, b)
		}
	}
	if len(k.running) == 0 || len(k.published) == 0 {
		return k, fmt.Errorf("%s: %d slow builds running, %d published", h.name, len(k.running), len(k.published))
	}
	for _, b := range k.published {
		for _, out := range b.Outputs {
			if !slices.ContainsFunc(without(hosts, h), func(o *host) bool { return loggedCopy(o, out) }) {
				return k, fmt.Errorf("%s: no other host holds a copy of %s yet", h.name, out)
			}
		}
	}
	return k, nil
}

// loggedCopy reports whether h's node logged that it holds a copy of path.
func loggedCopy(h *host, path string) bool {
	return h.out.contains(`msg="holding a copy" component=replicate path=` + path)
}

// waitCompleted waits until every survivor reports every build of g
// succeeded, then checks how: the killed host's published builds were not
// run again (their copies kept the outputs available), and its interrupted
// builds ran again on a survivor.
func waitCompleted(t *testing.T, live []*host, ids map[*host]string, g *drvgraph.Graph, k killed) {
	var last []buildJSON
	waitFor(t, removeAfter+120*time.Second, "every build succeeded, on every survivor", func() error {
		for _, h := range live {
			bs, err := builds(h)
			if err != nil {
				return err
			}
			if err := succeededOnce(bs, g); err != nil {
				return fmt.Errorf("%s: %w", h.name, err)
			}
			last = bs
		}
		return nil
	})
	byID := map[uint64]buildJSON{}
	for _, b := range last {
		byID[b.ID] = b
	}
	for _, b := range k.published {
		if now := byID[b.ID]; now.Attempt != b.Attempt || now.LastNode != k.id {
			t.Errorf("build %d of %s, published by the killed host, ran again: attempt %d on %s",
				b.ID, b.Derivation, now.Attempt, now.LastNode)
		}
	}
	survivors := idsOf(live, ids)
	for _, b := range k.running {
		if now := byID[b.ID]; now.Attempt <= b.Attempt || !slices.Contains(survivors, now.LastNode) {
			t.Errorf("build %d of %s, interrupted by the kill, ended with attempt %d on %s; want a later attempt on a survivor",
				b.ID, b.Derivation, now.Attempt, now.LastNode)
		}
	}
}

// succeededOnce checks one host's view: exactly one build per derivation of
// g, each succeeded.
func succeededOnce(bs []buildJSON, g *drvgraph.Graph) error {
	if len(bs) != len(g.Order) {
		return fmt.Errorf("%d builds, want %d", len(bs), len(g.Order))
	}
	seen := map[string]bool{}
	for _, b := range bs {
		if _, ok := g.Drvs[store.Path(b.Derivation)]; !ok || seen[b.Derivation] {
			return fmt.Errorf("build %d of %s: not in the graph, or a second build", b.ID, b.Derivation)
		}
		seen[b.Derivation] = true
		if b.State != "succeeded" {
			return fmt.Errorf("build %d of %s is %s", b.ID, b.Derivation, b.State)
		}
	}
	return nil
}
