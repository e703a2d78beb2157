package mesh

import (
	"fmt"
	"net"
	"net/netip"
	"sync"

	manet "github.com/multiformats/go-multiaddr/net"
)

// publicMu serialises TreatAsPublic: the ranges it changes belong to the
// process, not to one mesh.
var publicMu sync.Mutex

// ParsePublicRange reads a --public-range value, an IPv4 or IPv6 prefix
// such as 100.64.0.0/10.
func ParsePublicRange(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("public range %q: want a CIDR prefix such as 100.64.0.0/10: %w", s, err)
	}
	return p.Masked(), nil
}

// TreatAsPublic makes libp2p treat addresses in ranges as public: AutoNAT
// probes them, identify keeps them as observed addresses, relays announce
// them, and hole punching starts once a node has one. It is for networks
// whose public side uses ranges libp2p calls private or unroutable
// (carrier-grade NAT's 100.64.0.0/10, a lab on 198.18.0.0/15). libp2p
// decides what is public from process-wide tables
// (go-multiaddr/net.Private4, Unroutable4 and their IPv6 twins), so this
// changes them for the whole process: call it before the first mesh
// starts. Ranges only ever become public; calling it again adds more.
func TreatAsPublic(ranges []netip.Prefix) {
	if len(ranges) == 0 {
		return
	}
	publicMu.Lock()
	defer publicMu.Unlock()
	for _, r := range ranges {
		manet.Private4 = subtractRange(manet.Private4, r)
		manet.Unroutable4 = subtractRange(manet.Unroutable4, r)
		manet.Private6 = subtractRange(manet.Private6, r)
		manet.Unroutable6 = subtractRange(manet.Unroutable6, r)
	}
}

// subtractRange returns nets without the addresses of r: a net inside r
// goes, a net containing r is split into the prefixes around it, the
// others stay.
func subtractRange(nets []*net.IPNet, r netip.Prefix) []*net.IPNet {
	out := make([]*net.IPNet, 0, len(nets))
	for _, n := range nets {
		p, ok := prefixOf(n)
		if !ok || p.Addr().Is4() != r.Addr().Is4() || !p.Overlaps(r) {
			out = append(out, n)
			continue
		}
		for _, rest := range splitAround(p, r) {
			out = append(out, ipNetOf(rest))
		}
	}
	return out
}

// splitAround is p without r, as prefixes: empty when r covers p, else
// (r inside p) the sibling of every prefix on the way from p down to r.
func splitAround(p, r netip.Prefix) []netip.Prefix {
	if r.Bits() <= p.Bits() {
		return nil
	}
	var out []netip.Prefix
	for bits := p.Bits() + 1; bits <= r.Bits(); bits++ {
		onPath := netip.PrefixFrom(r.Addr(), bits).Masked()
		out = append(out, sibling(onPath))
	}
	return out
}

// sibling is the other half of the prefix one bit shorter than p.
func sibling(p netip.Prefix) netip.Prefix {
	b := p.Addr().AsSlice()
	bit := p.Bits() - 1
	b[bit/8] ^= 0x80 >> (bit % 8)
	a, _ := netip.AddrFromSlice(b)
	return netip.PrefixFrom(a, p.Bits())
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, bits := n.Mask.Size()
	if bits == 32 {
		a = a.Unmap()
	}
	return netip.PrefixFrom(a, ones).Masked(), true
}

func ipNetOf(p netip.Prefix) *net.IPNet {
	a := p.Addr()
	return &net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(p.Bits(), a.BitLen())}
}
