package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/citest"
	"github.com/tbfg/tbfg-node/internal/drvgraph"
	"github.com/tbfg/tbfg-node/internal/guiletest"
	"github.com/tbfg/tbfg-node/internal/netns"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/substitutes/narinfo"
)

// newWANCluster is newCluster on a netns.NAT with two LANs: hosts added
// with addHost are on the public segment, addHostOn(c.lan(i)) behind a
// router.
func newWANCluster(t *testing.T, flags ...string) (*cluster, *netns.NAT) {
	t.Helper()
	requireNamespaces(t)
	citest.Tool(t, "nft", "nftables")
	bin, client := buildBinary(t)
	if err := netns.RemoveStale(); err != nil {
		t.Logf("removing networks of aborted runs: %v", err)
	}
	w, err := netns.NewNAT(2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Errorf("remove networks: %v", err)
		}
	})
	return &cluster{t: t, bin: bin, client: client, net: w.Public, flags: flags, seen: map[string]string{}}, w
}

// wanNodeJSON is the part of `nodes --json` about connections.
type wanNodeJSON struct {
	ID           string `json:"id"`
	Self         bool   `json:"self"`
	Conn         string `json:"conn"`
	Reachability string `json:"reachability"`
}

// wanFlags are the flags of every node of the WAN tests, then extra.
func wanFlags(extra ...string) []string {
	return append([]string{
		"--raft-profile", raftProfile(),
		"--gossip-interval", "1s",
		"--max-builds", "2",
		"--system", nativeSystem(),
		"--no-advertise",
		// One copy of each output, on its builder: a NAR built on one LAN
		// and needed on the other crosses between them.
		"--replicas", "1",
		"--log-level", "info"}, extra...)
}

// publicRange is the public segment of netns.NAT, which the nodes of
// TestMeshAcrossNAT are told to treat as public (--public-range): libp2p
// calls all of 198.18.0.0/15 unroutable, so without it AutoNAT says
// "unknown", identify drops the observed addresses and hole punching
// never starts. The LANs (198.18.1.0/24, 198.18.2.0/24) stay non-public.
const publicRange = "198.18.0.0/24"

// joinPublic returns formMesh's extra flags: first's with firstFlags, every
// other's --peer to first's public multiaddr, then more[h].
func joinPublic(t *testing.T, first *host, firstFlags []string, more map[*host][]string) func(*host) []string {
	return func(h *host) []string {
		if h == first {
			return firstFlags
		}
		st, err := first.status()
		if err != nil || len(st.Addresses) == 0 {
			t.Fatalf("public node's addresses: %v %v", st.Addresses, err)
		}
		return append([]string{"--peer", publicAddr(st.Addresses, first)}, more[h]...)
	}
}

// TestMeshAcrossNAT runs one node on a public segment and one on each of
// two LANs behind masquerading routers with no port forwards. The LAN
// nodes join with only the secret and the public node's multiaddr; the
// public node relays (--relay on). Every node treats the public segment as
// public (--public-range), so AutoNAT finds the LAN nodes private and
// hole punching turns their relayed connection into a direct one. A graph
// submitted on LAN A builds partly on LAN B with nothing relayed, LAN A's
// substitute server serves, over the mesh, outputs built on LAN B, and
// after the public node is killed the LANs stay connected and build
// another graph together.
func TestMeshAcrossNAT(t *testing.T) {
	requireTools(t, "curl", "curl")
	c, w := newWANCluster(t, wanFlags("--public-range", publicRange)...)
	pub := c.addHost()
	a := c.addHostOn(w.LANs[0].Network)
	b := c.addHostOn(w.LANs[1].Network)
	hosts := []*host{pub, a, b}
	ids := map[*host]string{}
	if !t.Run("form", func(t *testing.T) { formMesh(t, hosts, ids, joinPublic(t, pub, []string{"--relay", "on"}, nil)) }) {
		return
	}
	if !t.Run("hole-punched", func(t *testing.T) { waitPunched(t, a, b, ids) }) {
		return
	}
	g, dir := newGraph(t, drvgraph.Options{Chain: 2, Leaves: 8, Tops: 2, PerTop: 4, SlowEvery: 2, SlowSleep: 1})
	before := traffic(t, hosts)
	// Submitted on LAN A; buildAll checks every host built some and that
	// inputs crossed hosts.
	if !t.Run("build", func(t *testing.T) { buildAll(t, []*host{pub, b, a}, ids, g, dir) }) {
		return
	}
	t.Run("nothing-relayed", func(t *testing.T) { checkNothingRelayed(t, before, traffic(t, hosts)) })
	fetched := t.TempDir()
	t.Run("substitute-on-lan-a", func(t *testing.T) { fetchBuiltOn(t, a, b, hosts, g, fetched) })
	t.Run("guix-signatures", func(t *testing.T) { checkSignatures(t, guiletest.Require(t), a, fetched) })
	t.Run("public-node-killed", func(t *testing.T) { killPublic(t, pub, a, b, ids) })
}

// TestMeshAcrossNATRelayed is TestMeshAcrossNAT where hole punching cannot
// happen, so members on the two LANs talk only through a relay: without
// --public-range, libp2p treats no address of 198.18.0.0/15 as public
// (AutoNAT stays "unknown", identify keeps no observed address, the hole
// punching service never starts). Two public nodes relay; the first leaves
// once the LAN nodes joined, so the leader is on a LAN and the other LAN
// node reaches it only through the second relay. Over that relayed
// connection: a graph submitted there (forwarded to the leader), NARs
// (builds' inputs, a substitute fetch on LAN A), and build logs. Then the
// relay is killed and the mesh recovers when it comes back.
func TestMeshAcrossNATRelayed(t *testing.T) {
	requireTools(t, "curl", "curl")
	c, w := newWANCluster(t, wanFlags()...)
	pub, pub2 := c.addHost(), c.addHost()
	a := c.addHostOn(w.LANs[0].Network)
	b := c.addHostOn(w.LANs[1].Network)
	ids := map[*host]string{}
	more := map[*host][]string{pub2: {"--relay", "on", "--voter=false"}}
	if !t.Run("form", func(t *testing.T) {
		formMesh(t, []*host{pub, pub2, a, b}, ids, joinPublic(t, pub, []string{"--relay", "on"}, more))
	}) {
		return
	}
	t.Log("hole punching cannot happen here: without --public-range no address of 198.18.0.0/15 is public to libp2p, so DCUtR has none to punch to")
	hosts := []*host{pub2, a, b}
	var leader, other *host
	if !t.Run("leader-on-a-lan", func(t *testing.T) { leader, other = leaveToLAN(t, pub, hosts, a, b, ids) }) {
		return
	}
	if !t.Run("connections", func(t *testing.T) { waitRelayed(t, other, ids[leader], ids[pub2]) }) {
		return
	}
	t.Run("status-page-says-relayed", func(t *testing.T) {
		code, page := statusGet(t, other, "GET", "/")
		if code != 200 || !strings.Contains(page, `title="this node's connection to it">relayed</span>`) {
			t.Errorf("%s's status page (%d) does not tag the leader relayed", other.name, code)
		}
	})
	g, dir := newGraph(t, drvgraph.Options{Chain: 2, Leaves: 8, Tops: 2, PerTop: 4, SlowEvery: 2, SlowSleep: 1})
	before := traffic(t, hosts)
	// Submitted on other, whose only connection to the leader is relayed.
	if !t.Run("build-forwarded", func(t *testing.T) { buildAll(t, []*host{pub2, leader, other}, ids, g, dir) }) {
		return
	}
	after := traffic(t, hosts)
	t.Logf("while the graph built: %s forwarded %d bytes between the LANs; %s's streams carried %d bytes direct, %d relayed",
		pub2.name, after[pub2].Forwarded-before[pub2].Forwarded, other.name,
		after[other].Direct-before[other].Direct, after[other].Relayed-before[other].Relayed)
	if after[other].Relayed <= before[other].Relayed {
		t.Errorf("%s sent and received nothing over relayed connections while the graph built", other.name)
	}
	t.Run("logs-through-relay", func(t *testing.T) { fetchLogs(t, other, leader, hosts, g) })
	fetched := t.TempDir()
	t.Run("substitute-through-relay", func(t *testing.T) { fetchBuiltOn(t, other, leader, hosts, g, fetched) })
	t.Run("guix-signatures", func(t *testing.T) { checkSignatures(t, guiletest.Require(t), other, fetched) })
	t.Run("relay-killed", func(t *testing.T) { killRelay(t, pub2, other, leader, hosts, ids) })
}

// hostTraffic is a host's conn_bytes and relayed_bytes.
type hostTraffic struct {
	Direct, Relayed, Forwarded uint64
}

// traffic reads every host's status and logs what its streams carried
// direct and relayed, and what its relay service forwarded.
func traffic(t *testing.T, hosts []*host) map[*host]hostTraffic {
	t.Helper()
	out := map[*host]hostTraffic{}
	for _, h := range hosts {
		raw, err := h.cli("status", "--json")
		if err != nil {
			t.Fatal(err)
		}
		var st struct {
			ConnBytes struct {
				Direct  uint64 `json:"direct"`
				Relayed uint64 `json:"relayed"`
			} `json:"conn_bytes"`
			RelayedBytes uint64 `json:"relayed_bytes"`
		}
		if err := json.Unmarshal(raw, &st); err != nil {
			t.Fatal(err)
		}
		out[h] = hostTraffic{Direct: st.ConnBytes.Direct, Relayed: st.ConnBytes.Relayed, Forwarded: st.RelayedBytes}
		t.Logf("%s: %d bytes direct, %d relayed; its relay service forwarded %d", h.name, st.ConnBytes.Direct, st.ConnBytes.Relayed, st.RelayedBytes)
	}
	return out
}

// checkNothingRelayed fails t if any host's streams carried relayed bytes,
// or any relay forwarded bytes, between before and after.
func checkNothingRelayed(t *testing.T, before, after map[*host]hostTraffic) {
	var direct uint64
	for h, a := range after {
		b := before[h]
		direct += a.Direct - b.Direct
		if a.Relayed != b.Relayed || a.Forwarded != b.Forwarded {
			t.Errorf("%s: %d bytes relayed and %d forwarded while the graph built, want none: every connection is direct",
				h.name, a.Relayed-b.Relayed, a.Forwarded-b.Forwarded)
		}
	}
	t.Logf("while the graph built: %d bytes direct (sum over the hosts' streams, each way), 0 relayed", direct)
}

// waitPunched waits until a and b list each other as direct, and checks
// that one of them replaced a relayed connection (the routers forward no
// inbound connection, so only hole punching makes one direct).
func waitPunched(t *testing.T, a, b *host, ids map[*host]string) {
	for _, pair := range [][2]*host{{a, b}, {b, a}} {
		from, to := pair[0], pair[1]
		waitFor(t, 60*time.Second, from.name+" connected direct to "+to.name, func() error {
			kinds, err := connKinds(from)
			if err != nil {
				return err
			}
			if kinds[ids[to]] != "direct" || kinds["self"] != "private" {
				return fmt.Errorf("connections %v: want %s direct and self private", kinds, ids[to])
			}
			return nil
		})
	}
	const punched = "connection direct now, relayed one closed"
	if !a.out.contains(punched) && !b.out.contains(punched) {
		t.Errorf("neither LAN node logged %q: their connection never went through the relay", punched)
	}
	out, err := a.cli("nodes")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: tbfg-node nodes:\n%s", a.name, out)
}

// killPublic kills the public node with SIGKILL: the LANs stay connected
// (direct, so nothing needs the relay), and build a graph submitted on a.
func killPublic(t *testing.T, pub, a, b *host, ids map[*host]string) {
	pub.kill()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		kinds, err := connKinds(a)
		if err != nil {
			t.Fatal(err)
		}
		if kinds[ids[b]] != "direct" {
			t.Fatalf("%s lost its direct connection to %s with the public node: %v", a.name, b.name, kinds)
		}
		time.Sleep(500 * time.Millisecond)
	}
	g, dir := newGraph(t, drvgraph.Options{Chain: 1, Leaves: 4, Tops: 1, PerTop: 4, SlowEvery: 2, SlowSleep: 1})
	lans := []*host{b, a}
	res := submit(t, a, "", g.Files(dir)...)
	if len(res.Builds) != len(g.Order) {
		t.Fatalf("submit: %d builds, want %d", len(res.Builds), len(g.Order))
	}
	waitFor(t, 120*time.Second, "the graph built by the two LANs", func() error { return graphSucceeded(lans, g) })
	builtOn := builders(t, lans, g)
	for _, h := range lans {
		n := 0
		for _, on := range builtOn {
			if on == h.name {
				n++
			}
		}
		t.Logf("%s built %d of %d derivations with the public node dead", h.name, n, len(g.Order))
	}
}

// graphSucceeded checks that every host sees every build of g succeeded
// (other graphs' builds may be listed too).
func graphSucceeded(hosts []*host, g *drvgraph.Graph) error {
	for _, h := range hosts {
		bs, err := builds(h)
		if err != nil {
			return err
		}
		done := 0
		for _, bj := range bs {
			if _, ok := g.Drvs[store.Path(bj.Derivation)]; ok && bj.State == "succeeded" {
				done++
			}
		}
		if done != len(g.Order) {
			return fmt.Errorf("%s: %d of %d builds succeeded", h.name, done, len(g.Order))
		}
	}
	return nil
}

// leaveToLAN makes the first public node leave, which hands leadership to
// a LAN node (the second public node is no voter), and returns the leader
// and the other LAN node.
func leaveToLAN(t *testing.T, pub *host, hosts []*host, a, b *host, ids map[*host]string) (leader, other *host) {
	if out, err := pub.cli("leave"); err != nil {
		t.Fatalf("%s: leave: %v\n%s", pub.name, err, out)
	}
	waitFor(t, 90*time.Second, "a LAN node leads the rest", func() error {
		want := idsOf(hosts, ids)
		slices.Sort(want)
		var lead string
		for _, h := range hosts {
			st, err := h.status()
			if err != nil {
				return err
			}
			if st.Leader != ids[a] && st.Leader != ids[b] {
				return fmt.Errorf("%s follows %q", h.name, st.Leader)
			}
			if lead != "" && st.Leader != lead {
				return fmt.Errorf("%s follows %s, another host %s", h.name, st.Leader, lead)
			}
			lead = st.Leader
			ns, err := listNodes(h)
			if err != nil {
				return err
			}
			if !slices.Equal(ns, want) {
				return fmt.Errorf("%s lists %v, want %v", h.name, ns, want)
			}
		}
		return nil
	})
	leader, other = a, b
	if st, _ := a.status(); st.Leader == ids[b] {
		leader, other = b, a
	}
	t.Logf("%s leads; %s submits", leader.name, other.name)
	return leader, other
}

// wanNodes is what h lists in nodes --json.
func wanNodes(h *host) ([]wanNodeJSON, error) {
	out, err := h.cli("nodes", "--json")
	if err != nil {
		return nil, err
	}
	var ns []wanNodeJSON
	if err := json.Unmarshal(out, &ns); err != nil {
		return nil, fmt.Errorf("%s: nodes --json: %w", h.name, err)
	}
	return ns, nil
}

// listNodes returns the sorted IDs h lists in nodes.
func listNodes(h *host) ([]string, error) {
	ns, err := wanNodes(h)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, n := range ns {
		ids = append(ids, n.ID)
	}
	slices.Sort(ids)
	return ids, nil
}

// fetchLogs prints on client, with tbfg-node log, the log of every build
// that ran on builder: the log comes from builder's node, through the
// relay. It must match what builder prints.
func fetchLogs(t *testing.T, client, builder *host, hosts []*host, g *drvgraph.Graph) {
	builtOn := builders(t, hosts, g)
	bs, err := builds(client)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, bj := range bs {
		if builtOn[bj.Derivation] != builder.name {
			continue
		}
		id := fmt.Sprint(bj.ID)
		want, err := builder.cli("log", id)
		if err != nil {
			t.Fatalf("%s: log %s: %v", builder.name, id, err)
		}
		got, err := client.cli("log", id)
		if err != nil || len(want) == 0 || !bytes.Equal(got, want) {
			t.Errorf("%s: log %s: %v\n%q\nwant what %s prints:\n%q", client.name, id, err, got, builder.name, want)
		}
		n++
	}
	t.Logf("%s printed the logs of the %d builds that ran on %s", client.name, n, builder.name)
	if n == 0 {
		t.Errorf("%s built nothing", builder.name)
	}
}

// publicAddr picks the public host's multiaddr on the public segment.
func publicAddr(addrs []string, pub *host) string {
	for _, a := range addrs {
		if strings.HasPrefix(a, "/ip4/"+pub.ns.Addr.String()+"/") {
			return a
		}
	}
	return addrs[0]
}

// waitRelayed waits until from lists peer as relayed and relay as direct.
func waitRelayed(t *testing.T, from *host, peer, relay string) {
	waitFor(t, 60*time.Second, from.name+" connected to the other LAN through the relay", func() error {
		kinds, err := connKinds(from)
		if err != nil {
			return err
		}
		if kinds[peer] != "relayed" || kinds[relay] != "direct" {
			return fmt.Errorf("connections %v: want %s relayed, %s direct", kinds, peer, relay)
		}
		return nil
	})
	out, err := from.cli("nodes")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: tbfg-node nodes:\n%s", from.name, out)
	if !strings.Contains(string(out), "relayed") || !strings.Contains(string(out), "self (") {
		t.Errorf("nodes shows no relayed peer or no reachability:\n%s", out)
	}
}

// connKinds maps each peer h lists to its connection kind, and "self" to
// h's reachability.
func connKinds(h *host) (map[string]string, error) {
	ns, err := wanNodes(h)
	if err != nil {
		return nil, err
	}
	kinds := map[string]string{}
	for _, n := range ns {
		if n.Self {
			kinds["self"] = n.Reachability
			continue
		}
		kinds[n.ID] = n.Conn
	}
	return kinds, nil
}

// fetchBuiltOn fetches from client's own substitute server every output
// builder built, checking each NAR against its narinfo: the NARs come over
// the mesh from the other LAN.
func fetchBuiltOn(t *testing.T, client, builder *host, hosts []*host, g *drvgraph.Graph, dir string) {
	builtOn := builders(t, hosts, g)
	base := substituteURL(client)
	n, narBytes := 0, uint64(0)
	for _, drv := range g.Order {
		if builtOn[string(drv)] != builder.name {
			continue
		}
		out := g.Output(drv)
		hash, _, _ := strings.Cut(out.Base(), "-")
		text, err := curl(client, base+"/"+hash+".narinfo")
		if err != nil {
			t.Errorf("%s: %v", out, err)
			continue
		}
		writeFile(t, filepath.Join(dir, client.name+"-"+hash+".narinfo"), string(text))
		if err := checkNAR(client, base, out, text); err != nil {
			t.Errorf("%s: %v", out, err)
			continue
		}
		if ni, err := narinfo.Parse(text, store.GuixDir); err == nil {
			narBytes += ni.NarSize
		}
		n++
	}
	t.Logf("%s served %d outputs built on %s, %d bytes of NAR", client.name, n, builder.name, narBytes)
	if n == 0 {
		t.Errorf("%s built nothing to fetch", builder.name)
	}
}

// killRelay kills the relaying node with SIGKILL: the two LAN nodes, which
// talk only through it, lose each other, and the mesh recovers when it is
// started again.
func killRelay(t *testing.T, relay, a, b *host, hosts []*host, ids map[*host]string) {
	relay.kill()
	waitFor(t, 60*time.Second, a.name+" to see "+b.name+"'s connection gone with the relay", func() error {
		kinds, err := connKinds(a)
		if err != nil {
			return err
		}
		if k := kinds[ids[b]]; k != "" {
			return fmt.Errorf("%s still connected to %s (%s)", a.name, b.name, k)
		}
		return nil
	})
	relay.start(t, "run", "--relay", "on", "--voter=false")
	waitRelayed(t, a, ids[b], ids[relay])
	waitFor(t, 120*time.Second, "one leader again", func() error {
		var lead string
		for _, h := range hosts {
			st, err := h.status()
			if err != nil {
				return err
			}
			if st.Leader == "" || lead != "" && st.Leader != lead {
				return fmt.Errorf("%s follows %q, another host %q", h.name, st.Leader, lead)
			}
			lead = st.Leader
		}
		return nil
	})
}
