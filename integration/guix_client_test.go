package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/drvgraph"
	"github.com/tbfg/tbfg-node/internal/guixtest"
	"github.com/tbfg/tbfg-node/node/adminapi"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/substitutes/narinfo"
	"github.com/tbfg/tbfg-node/substitutes/pki"
)

// clientSpecs is the graph of TestGuixClientOfMesh: ten derivations built
// anywhere (a chain, leaves on it, tops on the leaves), and three more kept
// out of the clients' stores until their step: one only the host that
// leaves builds, one only the first host builds, and one found through
// discovery.
var clientSpecs = []drvSpec{
	{name: "chain-0"}, {name: "chain-1", inputs: []string{"chain-0"}},
	{name: "leaf-0", inputs: []string{"chain-1"}}, {name: "leaf-1", inputs: []string{"chain-1"}},
	{name: "leaf-2", inputs: []string{"chain-1"}}, {name: "leaf-3", inputs: []string{"chain-1"}},
	{name: "leaf-4", inputs: []string{"chain-1"}},
	{name: "top-0", inputs: []string{"leaf-0", "leaf-1"}}, {name: "top-1", inputs: []string{"leaf-2", "leaf-3"}},
	{name: "top-2", inputs: []string{"leaf-4", "chain-1"}},
	{name: "by-leaver", feature: "tbfg-leaver"},
	{name: "by-first", feature: "tbfg-first"},
	{name: "discovered"},
}

// clientMeshGraph is the graph built for TestGuixClientOfMesh, with the
// outputs of its parts.
type clientMeshGraph struct {
	*drvgraph.Graph
	dir                       string
	ten                       []store.Path // the outputs of the first ten
	leaver, first, discovered store.Path
}

// TestGuixClientOfMesh has guix-daemon, on a machine of the LAN that runs no
// node, use a mesh of three builtin hosts as its substitute servers
// (guix-daemon --substitute-urls=http://FIRST-HOST:8761):
//   - before `tbfg-node authorize` it refuses every output, although the
//     host serves their narinfos;
//   - `tbfg-node authorize --from FILE`, FILE being what `tbfg-node acl
//     --json` printed on a host, adds the three member keys to its ACL
//     through the real `guix archive --authorize`, and a second run adds
//     nothing;
//   - then it substitutes every output of a ten-derivation graph, and
//     records the NarHash, NarSize and references of the narinfos;
//   - a second guix-daemon with --discover=yes and no substitute URLs finds
//     a host by the node's own mDNS answers (`guix discover` through an
//     avahi-daemon in the client's namespace) and substitutes an output
//     only the mesh has;
//   - once a host has left, `tbfg-node authorize --prune` removes its key,
//     and the daemon refuses the output it signed, which the mesh still
//     serves, while it takes one a remaining member signed.
func TestGuixClientOfMesh(t *testing.T) {
	requireNamespaces(t)
	guixtest.RequireDiscover(t)
	requireTools(t, "curl", "curl", "dbus-daemon", "dbus-daemon", "avahi-daemon", "avahi-daemon")
	c := newCluster(t,
		"--raft-profile", raftProfile(),
		"--gossip-interval", "1s",
		"--max-builds", "3",
		"--replicas", "2",
		"--system", nativeSystem(),
		"--log-level", "info")
	for range 3 {
		c.addHost().env = []string{noSystemBus}
	}
	hosts := c.hosts
	client := c.addHost() // runs no node: a Guix machine of the LAN
	// guix discover asks avahi-daemon once, at the daemon's start.
	bus := startAvahi(t, client)
	discovering := startGuixDaemon(t, client, guixtest.DaemonOptions{Discover: true,
		Env: []string{"DBUS_SYSTEM_BUS_ADDRESS=" + bus}})
	first, leaver := hosts[0], hosts[2]
	url := substituteURL(first)
	plain := startGuixDaemon(t, client, guixtest.DaemonOptions{SubstituteURLs: []string{url}})
	ids := map[*host]string{}
	if !t.Run("form", func(t *testing.T) {
		formMesh(t, hosts, ids, func(h *host) []string {
			switch h {
			case first:
				return []string{"--feature", "tbfg-first"}
			case leaver:
				return []string{"--feature", "tbfg-leaver"}
			}
			return nil
		})
	}) {
		return
	}
	g := buildClientGraph(t, hosts)
	deleteFromStore(t, plain, func() []store.Path { return outputs(g.Graph) })
	if !t.Run("refused-before-authorize", func(t *testing.T) { checkRefusedUnauthorized(t, plain, client, first, g.ten) }) {
		return
	}
	if !t.Run("authorize", func(t *testing.T) { checkAuthorize(t, plain, first, hosts) }) {
		return
	}
	t.Run("substituted", func(t *testing.T) {
		stderr, err := guixBuild(plain, "", g.ten...)
		if err != nil {
			t.Fatalf("guix build: %v\n%s", err, stderr)
		}
		if !strings.Contains(stderr, "downloading from "+url+"/nar/") {
			t.Errorf("guix build does not say it downloads from %s:\n%s", url, stderr)
		}
		checkRecorded(t, plain, client, first, g.ten)
	})
	t.Run("discover", func(t *testing.T) { checkDiscovery(t, discovering, hosts, g.discovered) })
	t.Run("prune", func(t *testing.T) { checkPrune(t, plain, client, hosts, g) })
}

// buildClientGraph builds clientSpecs on hosts, submitted on the second.
func buildClientGraph(t *testing.T, hosts []*host) *clientMeshGraph {
	t.Helper()
	gr, dir := specGraph(t, clientSpecs, "")
	g := &clientMeshGraph{Graph: gr, dir: dir}
	for i, drv := range gr.Order {
		switch name := clientSpecs[i].name; name {
		case "by-leaver":
			g.leaver = gr.Output(drv)
		case "by-first":
			g.first = gr.Output(drv)
		case "discovered":
			g.discovered = gr.Output(drv)
		default:
			g.ten = append(g.ten, gr.Output(drv))
		}
	}
	res := submit(t, hosts[1], "", gr.Files(dir)...)
	if len(res.Builds) != len(gr.Order) {
		t.Fatalf("submit: %d builds, want %d", len(res.Builds), len(gr.Order))
	}
	waitFor(t, 90*time.Second, "every build succeeded, on every host", func() error {
		for _, h := range hosts {
			bs, err := builds(h)
			if err != nil {
				return err
			}
			if err := allSucceeded(bs, gr); err != nil {
				return fmt.Errorf("%s: %w", h.name, err)
			}
		}
		return nil
	})
	return g
}

// checkRefusedUnauthorized checks that d, whose substitute server is
// server and whose ACL has no mesh key, has no trusted substitute for outs
// although server serves every narinfo, and that guix build leaves them
// absent.
func checkRefusedUnauthorized(t *testing.T, d *guixtest.PrivateDaemon, client, server *host, outs []store.Path) {
	for _, p := range outs {
		servedNarinfo(t, client, server, p)
	}
	if got := d.Substitutable(nil, mapSlice(outs, store.Path.String)...); len(got) != 0 {
		t.Errorf("substitutable before authorize: %v", got)
	}
	// guix build exits 0 having substituted nothing, as for any path
	// without a trusted substitute; guix substitute warns of the empty ACL.
	stderr, err := guixBuild(d, "", outs...)
	t.Logf("guix build before authorize: %v\n%s", err, stderr)
	if err != nil || !strings.Contains(stderr, "ACL for archive imports seems to be uninitialized") {
		t.Errorf("guix build before authorize: %v, want exit 0 and a warning about the ACL:\n%s", err, stderr)
	}
	if got := valid(d, outs...); len(got) != 0 {
		t.Errorf("substituted before authorize: %v", got)
	}
}

// checkAuthorize has d's machine authorize the members h lists, twice
// (authorizeFrom): the first run adds the key of every host, once, to d's
// ACL; the second changes nothing.
func checkAuthorize(t *testing.T, d *guixtest.PrivateDaemon, h *host, hosts []*host) {
	want := fmt.Sprintf("%d of %d member keys authorized with guix archive --authorize", len(hosts), len(hosts))
	if out := authorizeFrom(t, h, d); !strings.Contains(out, want) {
		t.Errorf("authorize said %q, want %q", out, want)
	}
	keys := mapSlice(hosts, func(h *host) pki.PublicKey { return nodeKey(t, h) })
	if got := aclKeys(t, d); !sameKeys(got, keys) {
		t.Fatalf("ACL holds %v, want each of %v once", got, keys)
	}
	before, err := os.ReadFile(d.ACLFile())
	if err != nil {
		t.Fatal(err)
	}
	want = fmt.Sprintf("0 of %d member keys authorized", len(hosts))
	if out := authorizeFrom(t, h, d); !strings.Contains(out, want) {
		t.Errorf("authorize again said %q, want %q", out, want)
	}
	if after, err := os.ReadFile(d.ACLFile()); err != nil || string(after) != string(before) {
		t.Errorf("authorize again changed the ACL:\n%s\nto:\n%s", before, after)
	}
}

// checkDiscovery waits until d's guix discover lists a host's substitute
// server, and only hosts' servers, and has d substitute p, which only the
// mesh has, with no substitute URL given anywhere. (guix discover keeps one
// server per service name, and the nodes here all advertise
// guix-publish-<the machine's host name>: on a LAN, each its own.)
func checkDiscovery(t *testing.T, d *guixtest.PrivateDaemon, hosts []*host, p store.Path) {
	urls := mapSlice(hosts, substituteURL)
	waitFor(t, 60*time.Second, "guix discover lists a host", func() error {
		got := d.Discovered()
		if len(got) == 0 || slices.ContainsFunc(got, func(u string) bool { return !slices.Contains(urls, u) }) {
			return fmt.Errorf("it lists %v, want some of %v", got, urls)
		}
		return nil
	})
	authorizeFrom(t, hosts[1], d)
	if got := valid(d, p); len(got) != 0 {
		t.Fatalf("%s is in the store before the test substitutes it", p)
	}
	stderr, err := guixBuild(d, "", p)
	if err != nil || len(valid(d, p)) == 0 {
		t.Fatalf("guix build %s with discovered servers: %v\n%s\ndaemon:\n%s", p, err, stderr, d.Output())
	}
	if !slices.ContainsFunc(d.Discovered(), func(u string) bool { return strings.Contains(stderr, u+"/nar/") }) {
		t.Errorf("guix build does not say it downloaded from a discovered server (%v):\n%s", d.Discovered(), stderr)
	}
}

// checkPrune has the last host leave the mesh, then checks that the daemon
// d, whose substitute server is the first host, still takes what the host
// that left signed until `tbfg-node authorize --prune` removes its key, and
// then refuses it while the first host still serves it.
func checkPrune(t *testing.T, d *guixtest.PrivateDaemon, client *host, hosts []*host, g *clientMeshGraph) {
	first, second, leaver := hosts[0], hosts[1], hosts[2]
	waitFor(t, 60*time.Second, "a second holder of "+g.leaver.Base(), func() error {
		for _, h := range []*host{first, second} {
			if _, err := os.Lstat(filepath.Join(h.dataDir, "store", g.leaver.Base())); err == nil {
				return nil
			}
		}
		return errors.New("only the host that built it holds it")
	})
	if out, err := leaver.cli("leave"); err != nil {
		t.Fatalf("leave: %v\n%s", err, out)
	}
	waitFor(t, 60*time.Second, leaver.name+" left", func() error { return memberLeft(first, nodeKey(t, leaver)) })
	both := []store.Path{g.first, g.leaver}
	slices.Sort(both)
	if got := d.Substitutable(nil, mapSlice(both, store.Path.String)...); !slices.Equal(got, mapSlice(both, store.Path.String)) {
		t.Fatalf("substitutable before --prune: %v, want %v", got, both)
	}
	if out := authorizeFrom(t, first, d); !strings.Contains(out, "1 key of members that left the mesh still in") {
		t.Errorf("authorize without --prune said %q", out)
	}
	if out := authorizeFrom(t, first, d, "--prune"); !strings.Contains(out, "1 key of members that left the mesh removed from") {
		t.Errorf("authorize --prune said %q", out)
	}
	if got, want := aclKeys(t, d), []pki.PublicKey{nodeKey(t, first), nodeKey(t, second)}; !sameKeys(got, want) {
		t.Errorf("ACL after --prune holds %v, want %v", got, want)
	}
	ni := servedNarinfo(t, client, first, g.leaver)
	if st := narinfo.VerifyGuix(ni, &pki.ACL{Keys: []pki.PublicKey{nodeKey(t, leaver)}}); st != pki.Valid {
		t.Errorf("the narinfo %s serves of %s is not signed by the host that left: %v", first.name, g.leaver, st)
	}
	stderr, err := guixBuild(d, "", g.first, g.leaver)
	t.Logf("guix build after --prune: %v\n%s", err, stderr)
	if got := valid(d, both...); !slices.Equal(got, []store.Path{g.first}) {
		t.Errorf("after --prune, valid: %v; want only %s", got, g.first)
	}
}

// memberLeft checks that h's node lists the member with key k as left.
func memberLeft(h *host, k pki.PublicKey) error {
	out, err := h.cli("acl", "--json")
	if err != nil {
		return err
	}
	var v adminapi.ACLView
	if err := json.Unmarshal(out, &v); err != nil {
		return err
	}
	for _, m := range v.Members {
		if mk, err := pki.ParsePublicKey([]byte(m.Key)); err == nil && mk == k {
			if m.Status != "left" {
				return fmt.Errorf("member %s is %s", m.ID, m.Status)
			}
			return nil
		}
	}
	return fmt.Errorf("no member has key %s", k)
}
