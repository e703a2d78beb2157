package mesh

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	pbv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/pb"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	ma "github.com/multiformats/go-multiaddr"
)

// RelayMode says whether a node relays connections between other members.
type RelayMode string

// Relay modes.
const (
	// RelayAuto relays while AutoNAT finds the node publicly reachable.
	RelayAuto RelayMode = "auto"
	// RelayOn always relays: the operator knows the node is reachable.
	RelayOn RelayMode = "on"
	// RelayOff never relays.
	RelayOff RelayMode = "off"
)

// ParseRelayMode reads a --relay value; empty means RelayAuto.
func ParseRelayMode(s string) (RelayMode, error) {
	switch RelayMode(s) {
	case "", RelayAuto:
		return RelayAuto, nil
	case RelayOn, RelayOff:
		return RelayMode(s), nil
	}
	return "", fmt.Errorf("relay mode %q: want auto, on or off", s)
}

// Connection kinds, as ConnKind reports them.
const (
	// ConnDirect is a connection over the network to the peer itself.
	ConnDirect = "direct"
	// ConnRelayed is a connection through a relaying member (/p2p-circuit).
	ConnRelayed = "relayed"
)

// relayResources are circuit relay v2's default resources (reservations,
// circuits per peer, buffers) without the per-circuit limit of 128 KiB and
// 2 minutes: members carry Raft, gossip and NARs over relayed connections,
// which such a limit would cut, and only members (who hold the mesh
// secret) can reach the relay at all.
func relayResources() relayv2.Resources {
	rc := relayv2.DefaultResources()
	rc.Limit = nil
	return rc
}

// wanOptions are the host's options for reaching members across NAT:
// AutoNAT (client, and service for the others), identify's observed
// addresses, the circuit relay v2 client, the relay service when mode is
// auto (libp2p starts it while AutoNAT says public), and hole punching.
func wanOptions(mode RelayMode, w *wan) []libp2p.Option {
	opts := []libp2p.Option{
		libp2p.EnableNATService(),
		libp2p.EnableRelay(),
		libp2p.EnableHolePunching(),
		libp2p.BandwidthReporter(&w.bytes),
	}
	if mode == RelayAuto {
		opts = append(opts, libp2p.EnableRelayService(relayv2.WithResources(relayResources()),
			relayv2.WithMetricsTracer(relayCounter{w})))
	}
	return opts
}

// wan is the mesh's part in reaching members across NAT: the relay service
// of --relay on, the reachability AutoNAT reports, and the reservations
// this node holds at relaying members.
type wan struct {
	relay *relayv2.Relay // --relay on only

	relayed atomic.Uint64 // bytes the relay service forwarded
	bytes   connCounter   // bytes of this node's streams, by connection kind

	mu    sync.Mutex
	reach network.Reachability
	rsvp  map[peer.ID]reservation
}

// reservation is a slot held at a relay. A relay forgets it when the
// connection it was made on closes (or the relay restarts), so it is
// remade on every new connection.
type reservation struct {
	conn    string // the connection's ID
	expires time.Time
}

// reservationCheck is how often a node checks its reservations at relays.
const reservationCheck = 5 * time.Second

// startWAN starts the relay service of --relay on, the reachability watch
// and the reservation loop.
func (m *Mesh) startWAN() error {
	if m.cfg.Relay == RelayOn {
		r, err := relayv2.New(m.host, relayv2.WithResources(relayResources()),
			relayv2.WithMetricsTracer(relayCounter{m.wan}))
		if err != nil {
			return fmt.Errorf("start relay service: %w", err)
		}
		m.wan.relay = r
	}
	sub, err := m.host.EventBus().Subscribe(new(event.EvtLocalReachabilityChanged))
	if err != nil {
		return fmt.Errorf("watch reachability: %w", err)
	}
	nw := m.host.Network()
	m.wan.bytes.net.Store(&nw)
	m.watchConns()
	m.goLoop(func() { m.watchReachability(sub) })
	m.goLoop(m.reserveLoop)
	return nil
}

// closeWAN stops the relay service of --relay on.
func (m *Mesh) closeWAN() error {
	if m.wan.relay == nil {
		return nil
	}
	return m.wan.relay.Close()
}

func (m *Mesh) watchReachability(sub event.Subscription) {
	defer sub.Close()
	for {
		select {
		case <-m.ctx.Done():
			return
		case e, ok := <-sub.Out():
			if !ok {
				return
			}
			r := e.(event.EvtLocalReachabilityChanged).Reachability
			m.wan.mu.Lock()
			m.wan.reach = r
			m.wan.mu.Unlock()
			m.log.Info("reachability", "autonat", reachabilityName(r))
		}
	}
}

// Reachability is what AutoNAT found about this node: "public", "private"
// or "unknown".
func (m *Mesh) Reachability() string {
	m.wan.mu.Lock()
	defer m.wan.mu.Unlock()
	return reachabilityName(m.wan.reach)
}

func reachabilityName(r network.Reachability) string {
	switch r {
	case network.ReachabilityPublic:
		return "public"
	case network.ReachabilityPrivate:
		return "private"
	}
	return "unknown"
}

// reserveLoop keeps a reservation at every connected relay while this node
// is not known to be publicly reachable and does not relay itself, so that
// members elsewhere can reach it through them.
func (m *Mesh) reserveLoop() {
	t := time.NewTicker(reservationCheck)
	defer t.Stop()
	for {
		if m.needsRelays() {
			for _, r := range m.relays() {
				m.reserve(r)
			}
		}
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (m *Mesh) needsRelays() bool {
	if m.cfg.Relay == RelayOn {
		return false
	}
	return m.Reachability() != "public"
}

// relays lists the connected peers that offer circuit relay v2.
func (m *Mesh) relays() []peer.ID {
	var out []peer.ID
	for _, p := range m.host.Network().Peers() {
		if ok, _ := m.host.Peerstore().SupportsProtocols(p, proto.ProtoIDv2Hop); len(ok) > 0 && m.directConn(p) != "" {
			out = append(out, p)
		}
	}
	return out
}

// reserve makes or renews the reservation at relay r when it was made on
// another connection or has less than a quarter of an hour left.
func (m *Mesh) reserve(r peer.ID) {
	conn := m.directConn(r)
	if conn == "" {
		return
	}
	m.wan.mu.Lock()
	old, had := m.wan.rsvp[r]
	m.wan.mu.Unlock()
	if old.conn == conn && time.Until(old.expires) > 15*time.Minute {
		return
	}
	ctx, cancel := context.WithTimeout(m.ctx, dialTimeout)
	defer cancel()
	rv, err := client.Reserve(ctx, m.host, peer.AddrInfo{ID: r})
	if err != nil {
		m.log.Debug("relay reservation", "relay", r, "error", err)
		return
	}
	m.wan.mu.Lock()
	m.wan.rsvp[r] = reservation{conn: conn, expires: rv.Expiration}
	m.wan.mu.Unlock()
	if !had || old.conn != conn {
		m.log.Info("reserved a slot at relay", "relay", r, "until", rv.Expiration)
	}
}

// directConn is the ID of a direct connection to p, "" if there is none.
func (m *Mesh) directConn(p peer.ID) string {
	for _, c := range m.host.Network().ConnsToPeer(p) {
		if !isRelayed(c.RemoteMultiaddr()) {
			return c.ID()
		}
	}
	return ""
}

// addRelayAddrs gives p an address through every connected relay, so that
// a dial that cannot reach p directly goes through one (libp2p dials
// relayed addresses after the direct ones).
func addRelayAddrs(h host.Host, p peer.ID, relays []peer.ID) {
	for _, r := range relays {
		if r == p {
			continue
		}
		a, err := ma.NewMultiaddr("/p2p/" + r.String() + "/p2p-circuit")
		if err == nil {
			h.Peerstore().AddAddr(p, a, peerstore.TempAddrTTL)
		}
	}
}

// ConnKind says how this node is connected to peer id: ConnDirect if any
// connection goes to the peer itself, ConnRelayed if all go through a
// relay, "" if none is open.
func (m *Mesh) ConnKind(id string) string {
	if !m.started.Load() {
		return ""
	}
	p, err := peer.Decode(id)
	if err != nil {
		return ""
	}
	kind := ""
	for _, c := range m.host.Network().ConnsToPeer(p) {
		if isRelayed(c.RemoteMultiaddr()) {
			kind = ConnRelayed
			continue
		}
		return ConnDirect
	}
	return kind
}

// isRelayed reports whether a connection's remote address is a circuit.
func isRelayed(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

// RelayedBytes is how many bytes this node's relay service has forwarded
// between other members since it started.
func (m *Mesh) RelayedBytes() uint64 { return m.wan.relayed.Load() }

// relayCounter is the relay service's metrics tracer: it counts the bytes
// forwarded and ignores the rest.
type relayCounter struct{ w *wan }

func (c relayCounter) BytesTransferred(n int)              { c.w.relayed.Add(uint64(n)) }
func (relayCounter) RelayStatus(bool)                      {}
func (relayCounter) ConnectionOpened()                     {}
func (relayCounter) ConnectionClosed(time.Duration)        {}
func (relayCounter) ConnectionRequestHandled(pbv2.Status)  {}
func (relayCounter) ReservationAllowed(bool)               {}
func (relayCounter) ReservationClosed(int)                 {}
func (relayCounter) ReservationRequestHandled(pbv2.Status) {}
