package mesh

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
)

func TestParseRelayMode(t *testing.T) {
	for in, want := range map[string]RelayMode{"": RelayAuto, "auto": RelayAuto, "on": RelayOn, "off": RelayOff} {
		if got, err := ParseRelayMode(in); err != nil || got != want {
			t.Errorf("ParseRelayMode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"yes", "ON", "true"} {
		if _, err := ParseRelayMode(in); err == nil {
			t.Errorf("ParseRelayMode(%q) accepted", in)
		}
	}
	cfg := testConfig(t, t.TempDir())
	cfg.FSM = &logFSM{}
	cfg.Relay = "sometimes"
	if _, err := New(cfg); err == nil {
		t.Error("New accepted relay mode \"sometimes\"")
	}
}

// TestMembersBehindNATTalkThroughRelay puts two members "behind NAT" from
// each other (their gaters refuse every direct connection between them) and
// checks that they still exchange more than circuit relay v2's default
// per-circuit limit of 128 KiB through the relaying member.
func TestMembersBehindNATTalkThroughRelay(t *testing.T) {
	c := newCluster(t, 1, func(cfg *Config) { cfg.Relay = RelayOn })
	c.mod = func(cfg *Config) { cfg.Relay = RelayOff }
	a, b := c.add(), c.add()
	waitFor(t, 15*time.Second, "3 voters", func() error { return c.agreed(3, 3) })
	for _, n := range []*testNode{a, b} {
		if err := n.HandleStream("blob", serveBlob); err != nil {
			t.Fatal(err)
		}
	}
	a.gater.setIndirect([]peer.ID{b.host.ID()})
	b.gater.setIndirect([]peer.ID{a.host.ID()})
	a.host.Network().ClosePeer(b.host.ID())
	b.host.Network().ClosePeer(a.host.ID())
	relay := c.nodes[0]
	waitFor(t, 15*time.Second, "reservations at the relay", func() error {
		for _, n := range []*testNode{a, b} {
			n.wan.mu.Lock()
			_, ok := n.wan.rsvp[relay.host.ID()]
			n.wan.mu.Unlock()
			if !ok {
				return fmt.Errorf("%s has no reservation", n.ID())
			}
		}
		return nil
	})
	const size = 4 << 20
	fetch(t, a, b, size)
	if k := a.ConnKind(b.ID()); k != ConnRelayed {
		t.Errorf("a's connection to b is %q, want %q", k, ConnRelayed)
	}
	// A restarted relay has forgotten every reservation: they are made
	// again on the new connections.
	a.host.Network().ClosePeer(b.host.ID())
	relay = relay.restart(t)
	c.nodes[0] = relay
	fetch(t, a, b, size)
	if k := a.ConnKind(relay.ID()); k != ConnDirect {
		t.Errorf("a's connection to the relay is %q, want %q", k, ConnDirect)
	}
	if n := relay.RelayedBytes(); n < size {
		t.Errorf("the relay forwarded %d bytes, want at least the %d of the blob", n, size)
	}
	if got := a.ConnBytes(); got.Relayed < 2*size {
		t.Errorf("a's streams carried %+v, want at least the %d bytes of two blobs relayed", got, 2*size)
	}
	if r := a.Reachability(); r == "" {
		t.Error("no reachability")
	}
	// The relay's restart may have cost the leader; the three agree again
	// with a and b talking through it.
	waitFor(t, 15*time.Second, "3 voters after the relay's restart", func() error { return c.agreed(3, 3) })
	checkDirectReplacesRelayed(t, a, b)
}

// checkDirectReplacesRelayed lets a and b dial each other again and
// checks that a direct connection closes the relayed one, as after hole
// punching, and that what follows goes direct.
func checkDirectReplacesRelayed(t *testing.T, a, b *testNode) {
	t.Helper()
	a.gater.setIndirect(nil)
	b.gater.setIndirect(nil)
	ctx, cancel := context.WithTimeout(network.WithForceDirectDial(context.Background(), "test"), 10*time.Second)
	defer cancel()
	if err := a.host.Connect(ctx, peer.AddrInfo{ID: b.host.ID(), Addrs: b.host.Addrs()}); err != nil {
		t.Fatalf("direct dial: %v", err)
	}
	waitFor(t, 10*time.Second, "the relayed connection closed", func() error {
		for _, c := range a.host.Network().ConnsToPeer(b.host.ID()) {
			if isRelayed(c.RemoteMultiaddr()) {
				return fmt.Errorf("still relayed through %s", c.RemoteMultiaddr())
			}
		}
		return nil
	})
	before := a.ConnBytes()
	fetch(t, a, b, 1<<20)
	if after := a.ConnBytes(); after.Relayed != before.Relayed || after.Direct < before.Direct+1<<20 {
		t.Errorf("a's streams carried %+v before and %+v after a direct fetch of 1 MiB", before, after)
	}
}

// TestRelayServesMembersOnly checks that a host without the mesh secret
// cannot reserve a slot at a relaying member: the private network ends its
// handshake before the relay protocol is reached.
func TestRelayServesMembersOnly(t *testing.T) {
	c := newCluster(t, 1, func(cfg *Config) { cfg.Relay = RelayOn })
	relay := c.nodes[0]
	cfg := testConfig(t, t.TempDir())
	cfg.Secret = bytes.Repeat([]byte{8}, 32) // not meshtest.Secret
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h, err := newHost(cfg, key, newGater(), &wan{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = client.Reserve(ctx, h, peer.AddrInfo{ID: relay.host.ID(), Addrs: relay.host.Addrs()})
	if err == nil {
		t.Fatal("a host with another secret reserved a slot at the relay")
	}
	t.Logf("reservation refused as it should be: %v", err)
}

// fetch waits until from gets a blob of size bytes from to.
func fetch(t *testing.T, from, to *testNode, size int) {
	t.Helper()
	waitFor(t, 30*time.Second, "a blob through the relay", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		sum, got, err := fetchBlob(ctx, from, to.ID(), size)
		switch {
		case err != nil:
			return err
		case got != int64(size) || sum != blobSum(size):
			return fmt.Errorf("got %d bytes (sum ok %v), want %d", got, sum == blobSum(size), size)
		}
		return nil
	})
}
