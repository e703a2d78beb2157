package netns

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"time"
)

// MaxLANs bounds the LANs of one NAT: LAN i (from 1) is 198.18.i.0/24.
const MaxLANs = 250

// ErrNoNFT is returned by NewNAT when nft(8) is missing.
var ErrNoNFT = errors.New("nft(8) not found (Debian package nftables)")

// NAT is a small internet: a public segment, 198.18.0.0/24, and LANs each
// behind a router that masquerades the LAN's traffic out of its public
// address, as a home router does. Routers forward nothing inbound except
// replies to connections opened from their LAN (no port forwards), route
// nothing between LANs, and route no multicast, so mDNS stays in each LAN.
type NAT struct {
	// Public is the segment between the routers; its hosts are reachable
	// from every LAN.
	Public *Network
	// LANs are the networks behind the routers, LANs[i] at 198.18.i+1.0/24.
	LANs []*LAN

	mk func() (*Network, error)
}

// LAN is a network behind a NAT router.
type LAN struct {
	*Network
	// Router is the router's namespace, a host on the public segment whose
	// Addr is the address the LAN's connections come from.
	Router *Host
	// link is the root end of the router's veth pair on the LAN bridge.
	link string
}

// natRules masquerades what leaves by eth0 (the public side) and forwards
// only what the LAN opened, and the replies to it. Like a home router, it
// drops (not refuses) what the public side opens towards the router
// itself: a refusal would answer a hole-punching SYN with a reset.
// Masquerade keeps a connection's source port where it is free, as Linux
// does, so a node's outgoing connections come from its listening port.
const natRules = `table ip tbfgnat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "eth0" masquerade
	}
	chain input {
		type filter hook input priority filter; policy accept;
		ct state established,related accept
		iifname "eth0" drop
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		iifname "eth1" oifname "eth0" accept
	}
}
`

// NewNAT creates a public segment and lans LANs behind their routers.
// Close removes all of it.
func NewNAT(lans int) (*NAT, error) {
	return newNAT(lans, New)
}

// newNAT is NewNAT with the networks made by mk.
func newNAT(lans int, mk func() (*Network, error)) (*NAT, error) {
	if lans < 1 || lans > MaxLANs {
		return nil, fmt.Errorf("nat with %d lans: want 1 to %d", lans, MaxLANs)
	}
	if _, err := exec.LookPath("nft"); err != nil {
		return nil, ErrNoNFT
	}
	pub, err := mk()
	if err != nil {
		return nil, err
	}
	w := &NAT{Public: pub, mk: mk}
	for i := 1; i <= lans; i++ {
		lan, err := w.addLAN(byte(i))
		if err != nil {
			return nil, errors.Join(fmt.Errorf("lan %d: %w", i, err), w.Close())
		}
		w.LANs = append(w.LANs, lan)
	}
	return w, nil
}

// addLAN creates LAN subnet's bridge and its router, a host on the public
// segment with a second interface, eth1, at 198.18.subnet.1 on the LAN.
func (w *NAT) addLAN(subnet byte) (*LAN, error) {
	r, err := w.Public.AddHost()
	if err != nil {
		return nil, err
	}
	n, err := w.mk()
	if err != nil {
		return nil, err
	}
	n.subnet = subnet
	n.gateway = netip.AddrFrom4([4]byte{198, 18, subnet, 1})
	lan := &LAN{Network: n, Router: r, link: n.id + "r"}
	if err := lan.wireRouter(); err != nil {
		return nil, errors.Join(err, lan.Close())
	}
	return lan, nil
}

// wireRouter joins the router to the LAN bridge and turns on forwarding and
// masquerading in its namespace.
func (l *LAN) wireRouter() error {
	peer := l.id + "q"
	ns := []string{"-n", l.Router.Name}
	steps := [][]string{
		{"link", "add", l.link, "type", "veth", "peer", "name", peer},
		{"link", "set", l.link, "addrgenmode", "none"},
		{"link", "set", l.link, "master", l.bridge},
		{"link", "set", l.link, "up"},
		{"link", "set", peer, "netns", l.Router.Name},
		append(ns, "link", "set", peer, "name", "eth1"),
		append(ns, "link", "set", "eth1", "addrgenmode", "none"),
		append(ns, "addr", "add", l.gateway.String()+"/24", "dev", "eth1"),
		append(ns, "link", "set", "eth1", "up"),
	}
	for _, args := range steps {
		if err := ip(args...); err != nil {
			return fmt.Errorf("router %s: %w", l.Router.Name, err)
		}
	}
	return l.routerRules()
}

// routerRules loads natRules and enables IPv4 forwarding in the router.
func (l *LAN) routerRules() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nft := l.Router.Command(ctx, "nft", "-f", "-")
	nft.Stdin = strings.NewReader(natRules)
	if out, err := nft.CombinedOutput(); err != nil {
		return fmt.Errorf("router %s: nft: %w: %s", l.Router.Name, err, strings.TrimSpace(string(out)))
	}
	out, err := l.Router.Command(ctx, "sysctl", "-qw", "net.ipv4.ip_forward=1").CombinedOutput()
	if err != nil {
		return fmt.Errorf("router %s: enable forwarding: %w: %s", l.Router.Name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Close removes the LAN's hosts, its bridge and the router's LAN link; the
// router itself goes with the public segment.
func (l *LAN) Close() error {
	return errors.Join(delLink(l.link), l.Network.Close())
}

// Close removes the LANs, the routers and the public segment. It returns
// the first error but always tries every step.
func (w *NAT) Close() error {
	var errs []error
	for _, l := range w.LANs {
		errs = append(errs, l.Close())
	}
	w.LANs = nil
	errs = append(errs, w.Public.Close())
	return errors.Join(errs...)
}
