package netns

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/citest"
)

func newTestNAT(t *testing.T) *NAT {
	t.Helper()
	requireRoot(t)
	citest.Tool(t, "nft", "nftables")
	w, err := NewNAT(2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Error(err)
		}
	})
	return w
}

func addHost(t *testing.T, n *Network) *Host {
	t.Helper()
	h, err := n.AddHost()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// serve accepts connections on a listener in h and sends each one's remote
// address on the returned channel.
func serve(t *testing.T, h *Host) (netip.AddrPort, <-chan netip.Addr) {
	t.Helper()
	ln, err := h.Listen("tcp4", h.Addr.String()+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	from := make(chan netip.Addr, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			from <- c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).AddrPort(), from
}

func dial(h *Host, to netip.AddrPort) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := h.DialContext(ctx, "tcp4", to.String())
	if err != nil {
		return err
	}
	return c.Close()
}

func TestNATLetsLANsOutButNothingIn(t *testing.T) {
	w := newTestNAT(t)
	pub := addHost(t, w.Public)
	a, a2 := addHost(t, w.LANs[0].Network), addHost(t, w.LANs[0].Network)
	b := addHost(t, w.LANs[1].Network)
	for h, want := range map[*Host]string{a: "198.18.1.2", a2: "198.18.1.3", b: "198.18.2.2", w.LANs[0].Router: "198.18.0.1", pub: "198.18.0.3"} {
		if h.Addr.String() != want {
			t.Errorf("%s at %s, want %s", h.Name, h.Addr, want)
		}
	}

	pubAddr, seen := serve(t, pub)
	if err := dial(a, pubAddr); err != nil {
		t.Fatalf("LAN A host cannot reach the public host: %v", err)
	}
	if got := <-seen; got != w.LANs[0].Router.Addr {
		t.Errorf("public host saw LAN A's connection from %s, want the router's %s (masquerade)", got, w.LANs[0].Router.Addr)
	}
	if err := dial(b, pubAddr); err != nil {
		t.Fatalf("LAN B host cannot reach the public host: %v", err)
	}

	aAddr, _ := serve(t, a)
	if err := dial(a2, aAddr); err != nil {
		t.Fatalf("hosts on one LAN cannot talk: %v", err)
	}
	routerA := netip.AddrPortFrom(w.LANs[0].Router.Addr, aAddr.Port())
	for _, tc := range []struct {
		from *Host
		to   netip.AddrPort
		what string
	}{
		{pub, aAddr, "public host to LAN A host"},
		{pub, routerA, "public host to LAN A's router at the LAN host's port (no port forward)"},
		{b, aAddr, "LAN B host to LAN A host"},
		{b, routerA, "LAN B host to LAN A's router at the LAN host's port"},
	} {
		if err := dial(tc.from, tc.to); err == nil {
			t.Errorf("%s: connection opened, want none", tc.what)
		}
	}
}

// TestNATAllowsTCPHolePunching opens one TCP connection between hosts on
// two LANs by simultaneous open, each dialling the other's router from its
// own fixed port, as libp2p's hole punching does: the routers keep the
// source port and let in what matches a connection their LAN opened.
func TestNATAllowsTCPHolePunching(t *testing.T) {
	w := newTestNAT(t)
	a, b := addHost(t, w.LANs[0].Network), addHost(t, w.LANs[1].Network)
	const port = 8760
	errs := make(chan error, 2)
	punch := func(from *Host, to netip.Addr) {
		errs <- from.do(func() error {
			d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{Port: port}}
			c, err := d.Dial("tcp4", netip.AddrPortFrom(to, port).String())
			if err != nil {
				return err
			}
			return c.Close()
		})
	}
	go punch(a, w.LANs[1].Router.Addr)
	go punch(b, w.LANs[0].Router.Addr)
	for range 2 {
		if err := <-errs; err != nil {
			t.Errorf("simultaneous open through both routers: %v", err)
		}
	}
}

func TestNATKeepsMulticastInLAN(t *testing.T) {
	w := newTestNAT(t)
	pub := addHost(t, w.Public)
	a, a2 := addHost(t, w.LANs[0].Network), addHost(t, w.LANs[0].Network)
	b := addHost(t, w.LANs[1].Network)
	group := netip.MustParseAddrPort("224.0.0.251:5353")
	heard := map[*Host]<-chan struct{}{}
	for _, h := range []*Host{a2, b, pub, w.LANs[0].Router} {
		heard[h] = listenGroup(t, h, group)
	}
	// Sent until the LAN neighbour hears it, so that the others had every
	// chance to hear it too.
	sendUntil(t, a, group, heard[a2])
	for _, h := range []*Host{b, pub, w.LANs[0].Router} {
		select {
		case <-heard[h]:
			if h == w.LANs[0].Router {
				continue // the router is on the LAN; it must only not forward
			}
			t.Errorf("%s heard LAN A's multicast", h.Name)
		default:
		}
	}
}

// listenGroup joins group on h's eth0 and closes the returned channel at the
// first datagram.
func listenGroup(t *testing.T, h *Host, group netip.AddrPort) <-chan struct{} {
	t.Helper()
	var pc *net.UDPConn
	err := h.do(func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		pc, err = net.ListenMulticastUDP("udp4", ifi, net.UDPAddrFromAddrPort(group))
		return err
	})
	if err != nil {
		t.Fatalf("listen for multicast in %s: %v", h.Name, err)
	}
	t.Cleanup(func() { pc.Close() })
	got := make(chan struct{})
	go func() {
		buf := make([]byte, 64)
		if _, _, err := pc.ReadFromUDP(buf); err == nil {
			close(got)
		}
	}()
	return got
}

func sendUntil(t *testing.T, h *Host, group netip.AddrPort, heard <-chan struct{}) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := h.DialContext(ctx, "udp4", group.String())
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Write([]byte("hello"))
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-heard:
			return
		case <-deadline:
			t.Fatal("LAN neighbour never heard the multicast")
		case <-tick.C:
		}
	}
}

func TestRemoveStaleDeletesDeadNATs(t *testing.T) {
	requireRoot(t)
	citest.Tool(t, "nft", "nftables")
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	var seq uint32
	w, err := newNAT(1, func() (*Network, error) {
		seq++
		return newNetwork(runID(dead.Process.Pid, seq))
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	h := addHost(t, w.LANs[0].Network)
	if err := RemoveStale(); err != nil {
		t.Fatal(err)
	}
	assertGone(t, w.Public.Bridge(), w.LANs[0].Router)
	assertGone(t, w.LANs[0].Bridge(), h)
	if _, err := os.Stat("/sys/class/net/" + w.LANs[0].link); err == nil {
		t.Errorf("router link %s still exists", w.LANs[0].link)
	}
}
