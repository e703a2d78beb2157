package mesh

import (
	"net"
	"net/netip"
	"slices"
	"testing"
)

func TestParsePublicRange(t *testing.T) {
	for in, want := range map[string]string{"198.18.0.0/24": "198.18.0.0/24", "100.64.1.2/10": "100.64.0.0/10", "fd00::/8": "fd00::/8"} {
		if got, err := ParsePublicRange(in); err != nil || got.String() != want {
			t.Errorf("ParsePublicRange(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "198.18.0.0", "198.18.0.0/33", "public"} {
		if _, err := ParsePublicRange(in); err == nil {
			t.Errorf("ParsePublicRange(%q) accepted", in)
		}
	}
}

// TestSubtractRange carves prefixes out of tables like go-multiaddr's:
// the addresses of the range leave the table, every other one stays.
func TestSubtractRange(t *testing.T) {
	table := func(cidrs ...string) []*net.IPNet {
		var out []*net.IPNet
		for _, c := range cidrs {
			_, n, err := net.ParseCIDR(c)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, n)
		}
		return out
	}
	in := func(nets []*net.IPNet, addr string) bool {
		ip := net.ParseIP(addr)
		return slices.ContainsFunc(nets, func(n *net.IPNet) bool { return n.Contains(ip) })
	}
	before := table("0.0.0.0/8", "198.18.0.0/15", "203.0.113.0/24", "fc00::/7")
	after := subtractRange(before, netip.MustParsePrefix("198.18.0.0/24"))
	for addr, want := range map[string]bool{
		"198.18.0.1": false, "198.18.0.255": false,
		"198.18.1.2": true, "198.18.2.2": true, "198.19.255.255": true,
		"0.1.2.3": true, "203.0.113.9": true, "fd00::1": true, "198.20.0.1": false,
	} {
		if got := in(after, addr); got != want {
			t.Errorf("%s in the table after removing 198.18.0.0/24: %v, want %v", addr, got, want)
		}
	}
	if got := subtractRange(before, netip.MustParsePrefix("198.0.0.0/8")); in(got, "198.18.1.1") || !in(got, "203.0.113.1") {
		t.Errorf("removing a range that covers an entry kept it or lost another: %v", got)
	}
	if got := subtractRange(before, netip.MustParsePrefix("fd00::/8")); in(got, "fd00::1") || !in(got, "fc00::1") {
		t.Errorf("removing fd00::/8 from fc00::/7: %v", got)
	}
}
