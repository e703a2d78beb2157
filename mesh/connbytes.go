package mesh

import (
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// ConnBytes counts the bytes this node's streams carried to and from other
// members, by the kind of connection they went over.
type ConnBytes struct {
	// Direct is what went over connections to the peers themselves.
	Direct uint64 `json:"direct"`
	// Relayed is what went through a relaying member.
	Relayed uint64 `json:"relayed"`
}

// ConnBytes returns the bytes this node's streams (Raft, gossip, requests
// and peer streams, both ways) carried since it started, by connection
// kind. They are stream payload bytes: encryption and framing are not
// counted.
func (m *Mesh) ConnBytes() ConnBytes {
	return ConnBytes{Direct: m.wan.bytes.direct.Load(), Relayed: m.wan.bytes.relayed.Load()}
}

// connCounter is the host's bandwidth reporter: it adds every stream read
// and write to the count of the kind of connection the peer has. A stream
// tells the reporter its peer, not its connection, so a peer with both
// kinds counts as direct: the mesh closes a relayed connection as soon as
// a direct one opens (dropRelayed), so both exist only for a moment.
type connCounter struct {
	net             atomic.Pointer[network.Network]
	direct, relayed atomic.Uint64
}

var _ metrics.Reporter = (*connCounter)(nil)

func (c *connCounter) add(n int64, p peer.ID) {
	nw := c.net.Load()
	if nw == nil || n <= 0 {
		return
	}
	conns := (*nw).ConnsToPeer(p)
	for _, cn := range conns {
		if !isRelayed(cn.RemoteMultiaddr()) {
			c.direct.Add(uint64(n))
			return
		}
	}
	if len(conns) > 0 {
		c.relayed.Add(uint64(n))
	}
}

// LogSentMessageStream counts n bytes written to p.
func (c *connCounter) LogSentMessageStream(n int64, _ protocol.ID, p peer.ID) { c.add(n, p) }

// LogRecvMessageStream counts n bytes read from p.
func (c *connCounter) LogRecvMessageStream(n int64, _ protocol.ID, p peer.ID) { c.add(n, p) }

// The rest of metrics.Reporter: totals come with the stream calls, and
// nothing reads per-peer or per-protocol figures.

func (*connCounter) LogSentMessage(int64)                                  {}
func (*connCounter) LogRecvMessage(int64)                                  {}
func (*connCounter) GetBandwidthForPeer(peer.ID) metrics.Stats             { return metrics.Stats{} }
func (*connCounter) GetBandwidthForProtocol(protocol.ID) metrics.Stats     { return metrics.Stats{} }
func (*connCounter) GetBandwidthTotals() metrics.Stats                     { return metrics.Stats{} }
func (*connCounter) GetBandwidthByPeer() map[peer.ID]metrics.Stats         { return nil }
func (*connCounter) GetBandwidthByProtocol() map[protocol.ID]metrics.Stats { return nil }
func (*connCounter) Reset()                                                {}
func (*connCounter) TrimIdle(time.Time)                                    {}

// watchConns closes relayed connections that a direct one made needless:
// hole punching opens a direct connection next to the relayed one and
// leaves both, and streams already open (Raft's pool, gossip) would go on
// through the relay. Closing it moves them to the direct connection.
func (m *Mesh) watchConns() {
	m.host.Network().Notify(&network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) {
			// Like a stream handler, Close waits for it; none starts after.
			if m.track() {
				go func() {
					defer m.untrack()
					m.dropRelayed(c.RemotePeer())
				}()
			}
		},
	})
}

// dropRelayed closes the relayed connections to p if a direct one is open.
func (m *Mesh) dropRelayed(p peer.ID) {
	if m.directConn(p) == "" {
		return
	}
	for _, c := range m.host.Network().ConnsToPeer(p) {
		if !isRelayed(c.RemoteMultiaddr()) {
			continue
		}
		if err := c.Close(); err != nil {
			m.log.Debug("close relayed connection", "peer", p, "error", err)
			continue
		}
		m.log.Info("connection direct now, relayed one closed", "peer", p, "addr", c.RemoteMultiaddr())
	}
}
