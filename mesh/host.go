package mesh

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/pnet"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/tbfg/tbfg-node/internal/atomicfile"
)

// identityFile is the name of the libp2p private key in the data dir.
const identityFile = "identity.key"

// loadIdentity reads DataDir/identity.key, creating a fresh Ed25519 key (0600)
// if there is none.
func loadIdentity(dir string) (crypto.PrivKey, error) {
	path := filepath.Join(dir, identityFile)
	data, err := os.ReadFile(path)
	if err == nil {
		k, err := crypto.UnmarshalPrivateKey(data)
		if err != nil {
			return nil, fmt.Errorf("read identity %s: %w", path, err)
		}
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read identity: %w", err)
	}
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate identity: %w", err)
	}
	data, err = crypto.MarshalPrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("encode identity: %w", err)
	}
	if err := atomicfile.Write(path, data, 0o600); err != nil {
		return nil, fmt.Errorf("write identity: %w", err)
	}
	return k, nil
}

// newHost builds the libp2p host: TCP only, private network, announcing
// only addresses on cfg.Interfaces (and relayed ones), with AutoNAT, the
// relay client and service, and hole punching (wanOptions).
func newHost(cfg Config, key crypto.PrivKey, g *gater, w *wan) (host.Host, error) {
	announce, err := announceFilter(cfg.Interfaces)
	if err != nil {
		return nil, err
	}
	TreatAsPublic(cfg.PublicRanges)
	opts := append([]libp2p.Option{
		libp2p.Identity(key),
		libp2p.PrivateNetwork(pnet.PSK(cfg.Secret)),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.ListenAddrStrings(cfg.ListenAddrs...),
		libp2p.AddrsFactory(announce),
		libp2p.ConnectionGater(g),
		libp2p.DisableMetrics(),
		libp2p.UserAgent("tbfg-node"),
	}, wanOptions(cfg.Relay, w)...)
	h, err := libp2p.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("start libp2p host on %v: %w", cfg.ListenAddrs, err)
	}
	return h, nil
}

// announceFilter returns the AddrsFactory that keeps the addresses this node
// announces: those on the named interfaces or, with none named, every
// non-loopback address (loopback only when there is nothing else, as in
// tests listening on 127.0.0.1).
func announceFilter(ifaces []string) (func([]ma.Multiaddr) []ma.Multiaddr, error) {
	allowed, err := interfaceIPs(ifaces)
	if err != nil {
		return nil, err
	}
	return func(addrs []ma.Multiaddr) []ma.Multiaddr {
		var keep, loop []ma.Multiaddr
		for _, a := range addrs {
			if isRelayed(a) {
				keep = append(keep, a)
				continue
			}
			ip, err := manet.ToIP(a)
			if err != nil {
				continue
			}
			switch {
			case allowed != nil:
				if allowed[ip.String()] {
					keep = append(keep, a)
				}
			case ip.IsLoopback():
				loop = append(loop, a)
			default:
				keep = append(keep, a)
			}
		}
		if len(keep) == 0 && allowed == nil {
			return loop
		}
		return keep
	}, nil
}

// interfaceIPs maps the IP addresses of the named interfaces; nil when no
// interface is named.
func interfaceIPs(names []string) (map[string]bool, error) {
	if len(names) == 0 {
		return nil, nil
	}
	ips := map[string]bool{}
	for _, n := range names {
		ifi, err := net.InterfaceByName(n)
		if err != nil {
			return nil, fmt.Errorf("interface %q: %w", n, err)
		}
		addrs, err := ifi.Addrs()
		if err != nil {
			return nil, fmt.Errorf("interface %q addresses: %w", n, err)
		}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				ips[ipn.IP.String()] = true
			}
		}
	}
	return ips, nil
}

// gater is the host's connection gater. It admits everyone except the peers
// blocked by tests to simulate a network partition, and reaches the peers
// tests put behind a NAT only through relays.
type gater struct {
	mu       sync.Mutex
	blocked  map[peer.ID]bool
	indirect map[peer.ID]bool
}

func newGater() *gater { return &gater{blocked: map[peer.ID]bool{}, indirect: map[peer.ID]bool{}} }

// setIndirect replaces the set of peers this host talks to only through
// relays, as if a NAT stood between them.
func (g *gater) setIndirect(ids []peer.ID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.indirect = map[peer.ID]bool{}
	for _, id := range ids {
		g.indirect[id] = true
	}
}

// allowedAt reports whether p may be talked to at address a.
func (g *gater) allowedAt(p peer.ID, a ma.Multiaddr) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.blocked[p] && (!g.indirect[p] || isRelayed(a))
}

// setBlocked replaces the set of peers this host refuses to talk to.
func (g *gater) setBlocked(ids []peer.ID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.blocked = map[peer.ID]bool{}
	for _, id := range ids {
		g.blocked[id] = true
	}
}

func (g *gater) allowed(p peer.ID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.blocked[p]
}

// InterceptPeerDial implements connmgr.ConnectionGater.
func (g *gater) InterceptPeerDial(p peer.ID) bool { return g.allowed(p) }

// InterceptAddrDial implements connmgr.ConnectionGater.
func (g *gater) InterceptAddrDial(p peer.ID, a ma.Multiaddr) bool { return g.allowedAt(p, a) }

// InterceptAccept implements connmgr.ConnectionGater.
func (g *gater) InterceptAccept(network.ConnMultiaddrs) bool { return true }

// InterceptSecured implements connmgr.ConnectionGater.
func (g *gater) InterceptSecured(_ network.Direction, p peer.ID, c network.ConnMultiaddrs) bool {
	return g.allowedAt(p, c.RemoteMultiaddr())
}

// InterceptUpgraded implements connmgr.ConnectionGater.
func (g *gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }
