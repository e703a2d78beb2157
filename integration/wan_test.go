package integration

import (
	"encoding/json"
	"fmt"
	"path/filepath"
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

// TestMeshAcrossNAT runs one node on a public segment and one on each of
// two LANs behind masquerading routers with no port forwards. The LAN
// nodes join with only the secret and the public node's multiaddr; the
// public node relays (--relay on: AutoNAT never calls 198.18.0.0/15
// public). A graph submitted on LAN A builds partly on LAN B, and LAN A's
// substitute server serves, over the mesh, outputs built on LAN B. Then
// the public node is killed and started again.
func TestMeshAcrossNAT(t *testing.T) {
	requireTools(t, "curl", "curl")
	c, w := newWANCluster(t,
		"--raft-profile", raftProfile(),
		"--gossip-interval", "1s",
		"--max-builds", "2",
		"--system", nativeSystem(),
		"--no-advertise",
		"--public-range", "198.18.0.0/24",
		"--log-level", "info")
	pub := c.addHost()
	a := c.addHostOn(w.LANs[0].Network)
	b := c.addHostOn(w.LANs[1].Network)
	hosts := []*host{pub, a, b}
	ids := map[*host]string{}
	extra := func(h *host) []string {
		if h == pub {
			return []string{"--relay", "on"}
		}
		st, err := pub.status()
		if err != nil || len(st.Addresses) == 0 {
			t.Fatalf("public node's addresses: %v %v", st.Addresses, err)
		}
		return []string{"--peer", publicAddr(st.Addresses, pub)}
	}
	if !t.Run("form", func(t *testing.T) { formMesh(t, hosts, ids, extra) }) {
		return
	}
	t.Run("connections", func(t *testing.T) { waitRelayed(t, a, ids[b], ids[pub]) })
	g, dir := newGraph(t, drvgraph.Options{Chain: 2, Leaves: 8, Tops: 2, PerTop: 4, SlowEvery: 2, SlowSleep: 1})
	// Submitted on LAN A; buildAll checks every host built some and that
	// inputs crossed hosts.
	if !t.Run("build", func(t *testing.T) { buildAll(t, []*host{pub, b, a}, ids, g, dir) }) {
		return
	}
	relayedBuild := relayedBytes(t, pub)
	fetched := t.TempDir()
	t.Run("substitute-on-lan-a", func(t *testing.T) { fetchBuiltOn(t, a, b, hosts, g, fetched) })
	t.Logf("bytes relayed by %s: %d while the graph built, %d more for the substitutes fetched on LAN A",
		pub.name, relayedBuild, relayedBytes(t, pub)-relayedBuild)
	t.Run("guix-signatures", func(t *testing.T) { checkSignatures(t, guiletest.Require(t), a, fetched) })
	t.Run("public-node-killed", func(t *testing.T) { killRelay(t, pub, a, b, hosts, ids) })
}

// relayedBytes reads the relayed_bytes of h's status.
func relayedBytes(t *testing.T, h *host) uint64 {
	t.Helper()
	out, err := h.cli("status", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		RelayedBytes uint64 `json:"relayed_bytes"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatal(err)
	}
	return st.RelayedBytes
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
	out, err := h.cli("nodes", "--json")
	if err != nil {
		return nil, err
	}
	var ns []wanNodeJSON
	if err := json.Unmarshal(out, &ns); err != nil {
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

// killRelay kills the public node with SIGKILL. Hole punching cannot
// connect the LANs here: libp2p only punches holes to public observed
// addresses, and 198.18.0.0/15 is not one, so the test checks that the
// LANs lose each other and that the mesh recovers when the relay is back.
func killRelay(t *testing.T, pub, a, b *host, hosts []*host, ids map[*host]string) {
	pub.kill()
	t.Log("hole punching is impossible in this topology (libp2p's DCUtR only uses public addresses, 198.18.0.0/15 is not); checking recovery through the relay instead")
	waitFor(t, 60*time.Second, "LAN A to see LAN B's connection gone with the relay", func() error {
		kinds, err := connKinds(a)
		if err != nil {
			return err
		}
		if k := kinds[ids[b]]; k != "" {
			return fmt.Errorf("%s still connected to %s (%s)", a.name, b.name, k)
		}
		return nil
	})
	pub.start(t, "run", "--relay", "on")
	waitFor(t, 120*time.Second, "one mesh again", func() error {
		return agree(hosts, idsOf(hosts, ids), true)
	})
	waitRelayed(t, a, ids[b], ids[pub])
}
