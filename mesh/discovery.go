package mesh

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/tbfg/tbfg-node/internal/atomicfile"
)

// dialTimeout bounds one connection attempt, handshake included.
const dialTimeout = 4 * time.Second

// maxAddrs bounds the addresses kept or accepted for one node.
const maxAddrs = 16

// addrBook is DataDir/peers.json: the last known addresses of every node this
// one has heard of, so that members can be redialled after a restart (Raft
// keeps only peer IDs and libp2p forgets the addresses of peers it is not
// connected to).
type addrBook struct {
	path  string
	self  peer.ID
	mu    sync.Mutex
	addrs map[string][]string
	dirty bool
}

func loadAddrBook(dir string, self peer.ID) (*addrBook, error) {
	b := &addrBook{path: filepath.Join(dir, "peers.json"), self: self, addrs: map[string][]string{}}
	data, err := os.ReadFile(b.path)
	if errors.Is(err, fs.ErrNotExist) {
		return b, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read address book: %w", err)
	}
	if err := json.Unmarshal(data, &b.addrs); err != nil {
		return nil, fmt.Errorf("address book %s: %w", b.path, err)
	}
	return b, nil
}

// set records the addresses of id; it ignores self, empty lists and
// addresses that do not parse.
func (b *addrBook) set(id string, addrs []string) {
	if id == b.self.String() || len(addrs) == 0 {
		return
	}
	var ok []string
	for _, a := range addrs {
		if _, err := ma.NewMultiaddr(a); err == nil && len(ok) < maxAddrs {
			ok = append(ok, a)
		}
	}
	slices.Sort(ok)
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(ok) == 0 || slices.Equal(b.addrs[id], ok) {
		return
	}
	b.addrs[id] = ok
	b.dirty = true
}

func (b *addrBook) get(id string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.addrs[id])
}

// all returns a copy of the book.
func (b *addrBook) all() map[string][]string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string][]string, len(b.addrs))
	for id, a := range b.addrs {
		out[id] = slices.Clone(a)
	}
	return out
}

// addTo loads every address into the peerstore.
func (b *addrBook) addTo(ps peerstore.Peerstore) {
	for id, addrs := range b.all() {
		addToPeerstore(ps, id, addrs)
	}
}

func addToPeerstore(ps peerstore.Peerstore, id string, addrs []string) {
	p, err := peer.Decode(id)
	if err != nil {
		return
	}
	for _, a := range addrs {
		if m, err := ma.NewMultiaddr(a); err == nil {
			ps.AddAddr(p, m, peerstore.PermanentAddrTTL)
		}
	}
}

// save writes the book if it changed.
func (b *addrBook) save() error {
	b.mu.Lock()
	if !b.dirty {
		b.mu.Unlock()
		return nil
	}
	data, err := json.MarshalIndent(b.addrs, "", "  ")
	b.dirty = false
	b.mu.Unlock()
	if err != nil {
		return fmt.Errorf("encode address book: %w", err)
	}
	if err := atomicfile.Write(b.path, data, 0o600); err != nil {
		return fmt.Errorf("write address book: %w", err)
	}
	return nil
}

// discovery finds peers: explicit Peers and mDNS.
type discovery struct {
	mdns    interface{ Close() error }
	backoff map[peer.ID]*dialState
	mu      sync.Mutex
}

type dialState struct {
	next time.Time
	wait time.Duration
}

// mdnsServiceName is the mDNS service under which this mesh's nodes announce
// themselves; it carries a hash of the secret so that meshes on one LAN do not
// even see each other.
func mdnsServiceName(secret []byte) string {
	sum := sha256.Sum256(append([]byte("tbfg-mesh-mdns:"), secret...))
	return "_tbfg-" + hex.EncodeToString(sum[:6]) + "._udp"
}

func (m *Mesh) startDiscovery() *discovery {
	d := &discovery{backoff: map[peer.ID]*dialState{}}
	if m.cfg.MDNS {
		svc := mdns.NewMdnsService(m.host, mdnsServiceName(m.cfg.Secret), mdnsNotifee{m})
		if err := svc.Start(); err != nil {
			m.log.Warn("mDNS discovery not started", "error", err)
		} else {
			d.mdns = svc
		}
	}
	return d
}

func (d *discovery) close() {
	if d.mdns != nil {
		d.mdns.Close()
	}
}

// mdnsNotifee receives peers found by mDNS.
type mdnsNotifee struct{ m *Mesh }

// HandlePeerFound implements mdns.Notifee: it keeps the peer's usable
// addresses and connects.
func (n mdnsNotifee) HandlePeerFound(info peer.AddrInfo) {
	m := n.m
	if info.ID == m.host.ID() || m.ctx.Err() != nil {
		return
	}
	info.Addrs = m.usableAddrs(info.Addrs)
	if len(info.Addrs) == 0 {
		return
	}
	m.host.Peerstore().AddAddrs(info.ID, info.Addrs, peerstore.TempAddrTTL)
	m.mem.noteFound(info.ID)
	if !m.track() {
		return
	}
	defer m.untrack()
	if err := m.host.Connect(m.ctx, info); err != nil {
		m.log.Debug("connect to peer found by mDNS", "peer", info.ID, "error", err)
	}
}

// usableAddrs drops loopback, non-IPv4 and, when Interfaces are named,
// addresses outside their subnets.
func (m *Mesh) usableAddrs(addrs []ma.Multiaddr) []ma.Multiaddr {
	nets := interfaceNets(m.cfg.Interfaces)
	var out []ma.Multiaddr
	for _, a := range addrs {
		ip, err := manet.ToIP(a)
		if err != nil || ip.IsLoopback() || ip.To4() == nil {
			continue
		}
		if nets != nil && !slices.ContainsFunc(nets, func(n *net.IPNet) bool { return n.Contains(ip) }) {
			continue
		}
		out = append(out, a)
	}
	return out
}

// interfaceNets lists the subnets of the named interfaces; nil if none named.
func interfaceNets(names []string) []*net.IPNet {
	var out []*net.IPNet
	for _, n := range names {
		ifi, err := net.InterfaceByName(n)
		if err != nil {
			continue
		}
		addrs, _ := ifi.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				out = append(out, ipn)
			}
		}
	}
	return out
}

// explicitPeers parses Config.Peers (validated by New) into the peerstore.
func (m *Mesh) explicitPeers() []peer.ID {
	var ids []peer.ID
	for _, s := range m.cfg.Peers {
		info, err := peer.AddrInfoFromString(s)
		if err != nil || info.ID == m.host.ID() {
			continue
		}
		m.host.Peerstore().AddAddrs(info.ID, info.Addrs, peerstore.PermanentAddrTTL)
		ids = append(ids, info.ID)
	}
	return ids
}

// dialMissing connects to every wanted peer that is not connected, each with
// its own exponential backoff.
func (m *Mesh) dialMissing(wanted []peer.ID) {
	now := time.Now()
	for _, p := range wanted {
		if p == m.host.ID() || m.host.Network().Connectedness(p) == network.Connected || !m.disc.due(p, now) {
			continue
		}
		m.goLoop(func() {
			err := m.connect(p)
			m.disc.result(p, err == nil, m.cfg.Timing.HeartbeatTimeout)
			if err != nil {
				m.noteDialError(p, err)
				m.log.Debug("dial peer", "peer", p, "error", err)
			}
		})
	}
}

// due reports whether p may be dialled now and, if so, marks a dial in
// progress.
func (d *discovery) due(p peer.ID, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.backoff[p]
	if st == nil {
		st = &dialState{}
		d.backoff[p] = st
	}
	if now.Before(st.next) {
		return false
	}
	st.next = now.Add(time.Hour) // until result
	return true
}

// result records a dial's outcome: success resets the backoff, failure
// doubles it up to ten heartbeats (at least 5s), so that a member is found
// again soon after its link comes back.
func (d *discovery) result(p peer.ID, ok bool, base time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.backoff[p]
	if ok {
		st.wait = 0
		st.next = time.Time{}
		return
	}
	st.wait = min(max(2*st.wait, base), max(10*base, 5*time.Second))
	st.next = time.Now().Add(st.wait)
}

func (m *Mesh) connect(p peer.ID) error {
	ctx, cancel := contextWithTimeout(m.ctx, dialTimeout)
	defer cancel()
	// libp2p backs off a peer for up to 5 minutes after failed dials; the
	// mesh keeps its own, shorter schedule so that a member whose link was
	// down is redialled within seconds of its return.
	if sw, ok := m.host.Network().(*swarm.Swarm); ok {
		sw.Backoff().Clear(p)
	}
	addRelayAddrs(m.host, p, m.relays())
	if err := m.host.Connect(ctx, peer.AddrInfo{ID: p}); err != nil {
		return m.explainDialError(p, err)
	}
	return nil
}
