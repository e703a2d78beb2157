package dnssd

import (
	"fmt"
	"net"
	"strings"

	"github.com/libp2p/zeroconf/v2"
)

// recordTTL is the TTL, in seconds, of every record the zeroconf responder
// sends: short, as the service is only as alive as the node.
const recordTTL = 120

// zeroconfAd answers mDNS for the service itself.
type zeroconfAd struct {
	name   string
	server *zeroconf.Server
}

// startZeroconf registers the service with a zeroconf responder on the
// configured interfaces, advertising their IPv4 addresses only. It joins the
// mDNS group and announces on those interfaces only; it does answer a query
// that reaches its socket from another interface, which Linux delivers only
// when another socket of this host joined the group there.
func startZeroconf(cfg Config) (*zeroconfAd, error) {
	ifaces, err := multicastInterfaces(cfg.Interfaces)
	if err != nil {
		return nil, err
	}
	ips, err := ipv4Addresses(ifaces)
	if err != nil {
		return nil, err
	}
	host := cfg.HostName
	if host == "" {
		if host, err = shortHostname(); err != nil {
			return nil, err
		}
	}
	// An empty TXT string, as RFC 6763 section 6.1 asks when there is no data.
	// Every record carries recordTTL, so a node that dies without sending
	// goodbyes drops out of browsers' caches within two minutes.
	text := []string{""}
	server, err := zeroconf.RegisterProxy(cfg.Instance, ServiceType, "local.", cfg.Port,
		strings.TrimSuffix(host, "."), ips, text, ifaces, zeroconf.TTL(recordTTL))
	if err != nil {
		return nil, fmt.Errorf("start mDNS responder: %w", err)
	}
	return &zeroconfAd{name: cfg.Instance, server: server}, nil
}

// multicastInterfaces resolves names, or lists every interface that is up,
// multicast-capable and not loopback when names is empty.
func multicastInterfaces(names []string) ([]net.Interface, error) {
	if len(names) > 0 {
		var out []net.Interface
		for _, name := range names {
			ifi, err := net.InterfaceByName(name)
			if err != nil {
				return nil, fmt.Errorf("interface %q: %w", name, err)
			}
			out = append(out, *ifi)
		}
		return out, nil
	}
	all, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	var out []net.Interface
	for _, ifi := range all {
		f := ifi.Flags
		if f&net.FlagUp != 0 && f&net.FlagMulticast != 0 && f&net.FlagLoopback == 0 {
			out = append(out, ifi)
		}
	}
	return out, nil
}

// ipv4Addresses lists the IPv4 addresses of ifaces other than loopback ones.
func ipv4Addresses(ifaces []net.Interface) ([]string, error) {
	var ips []string
	var names []string
	for _, ifi := range ifaces {
		names = append(names, ifi.Name)
		addrs, err := ifi.Addrs()
		if err != nil {
			return nil, fmt.Errorf("addresses of %s: %w", ifi.Name, err)
		}
		for _, a := range addrs {
			// A loopback address is of no use to another host.
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
				ips = append(ips, n.IP.String())
			}
		}
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("%w on interfaces %v", ErrNoAddress, names)
	}
	return ips, nil
}

func (z *zeroconfAd) instance() string { return z.name }

// close sends goodbye packets (TTL 0) and closes the sockets.
func (z *zeroconfAd) close() error {
	z.server.Shutdown()
	return nil
}
