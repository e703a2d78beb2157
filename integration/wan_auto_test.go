package integration

import (
	"fmt"
	"testing"
	"time"
)

// TestRelayAutoOnPublicMembers runs two public nodes with the default
// --relay auto and one node on each of two LANs behind NAT, all told that
// the public segment is public (--public-range). AutoNAT needs a peer with
// a public address of its own to dial it back, so the two public nodes find
// each other public, and their relay services start by themselves; the LAN
// nodes reserve slots there, and their relayed connection is hole punched
// to a direct one, which needs a relay to meet through.
func TestRelayAutoOnPublicMembers(t *testing.T) {
	c, w := newWANCluster(t, wanFlags("--public-range", publicRange)...)
	pub, pub2 := c.addHost(), c.addHost()
	a := c.addHostOn(w.LANs[0].Network)
	b := c.addHostOn(w.LANs[1].Network)
	hosts := []*host{pub, pub2, a, b}
	ids := map[*host]string{}
	if !t.Run("form", func(t *testing.T) { formMesh(t, hosts, ids, joinPublic(t, pub, nil, nil)) }) {
		return
	}
	t.Run("public-nodes-find-themselves-public", func(t *testing.T) {
		for _, h := range []*host{pub, pub2} {
			waitFor(t, 90*time.Second, h.name+" public by AutoNAT", func() error {
				kinds, err := connKinds(h)
				if err != nil {
					return err
				}
				if kinds["self"] != "public" {
					return fmt.Errorf("reachability %q", kinds["self"])
				}
				return nil
			})
		}
	})
	if !t.Run("hole-punched", func(t *testing.T) { waitPunched(t, a, b, ids) }) {
		return
	}
	tr := traffic(t, hosts)
	if tr[pub].Forwarded+tr[pub2].Forwarded == 0 {
		t.Errorf("neither public node forwarded a byte: no relay served the LAN nodes")
	}
}
