package mesh

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
)

// raftProtocol carries Raft's RPCs, one NetworkTransport connection per stream.
const raftProtocol = protocol.ID("/tbfg/raft/1")

// streamLayer is a raft.StreamLayer over libp2p streams: a Raft server address
// is a peer ID, Dial opens a stream to it and Accept hands out incoming ones.
// raft.NetworkTransport pools the streams it dials.
type streamLayer struct {
	h        host.Host
	incoming chan net.Conn
	done     chan struct{}
	once     sync.Once

	mu      sync.Mutex
	open    map[*streamConn]struct{} // every stream handed to Raft, until closed
	aborted bool
}

func newStreamLayer(h host.Host) *streamLayer {
	return &streamLayer{h: h, incoming: make(chan net.Conn), done: make(chan struct{}), open: map[*streamConn]struct{}{}}
}

// handle is the libp2p stream handler feeding Accept. A stream that arrives
// after Close is reset.
func (l *streamLayer) handle(s network.Stream) {
	c := l.adopt(s)
	if c == nil {
		return
	}
	select {
	case l.incoming <- c:
	case <-l.done:
		c.Reset()
	}
}

// adopt tracks s so that abort can reset it; nil (and s reset) after abort.
func (l *streamLayer) adopt(s network.Stream) *streamConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.aborted {
		s.Reset()
		return nil
	}
	c := &streamConn{Stream: s, l: l}
	l.open[c] = struct{}{}
	return c
}

func (l *streamLayer) forget(c *streamConn) {
	l.mu.Lock()
	delete(l.open, c)
	l.mu.Unlock()
}

// abort closes the layer and resets every open Raft stream, which fails
// at once the reads, writes and dials Raft's goroutines are blocked in.
func (l *streamLayer) abort() {
	l.Close()
	l.mu.Lock()
	l.aborted = true
	open := l.open
	l.open = map[*streamConn]struct{}{}
	l.mu.Unlock()
	for c := range open {
		c.Stream.Reset()
	}
}

// Accept implements net.Listener.
func (l *streamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.incoming:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener.
func (l *streamLayer) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr implements net.Listener: this node's peer ID.
func (l *streamLayer) Addr() net.Addr { return peerAddr(l.h.ID()) }

// Dial implements raft.StreamLayer.
func (l *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	id, err := peer.Decode(string(address))
	if err != nil {
		return nil, fmt.Errorf("raft address %q: %w", address, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	go func() {
		select {
		case <-l.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	// A member that was down has been put in libp2p's dial backoff (up to
	// minutes); Raft retries with its own backoff, so libp2p's is cleared
	// to let a restarted member vote and replicate at once.
	if sw, ok := l.h.Network().(*swarm.Swarm); ok && l.h.Network().Connectedness(id) != network.Connected {
		sw.Backoff().Clear(id)
	}
	s, err := l.h.NewStream(ctx, id, raftProtocol)
	if err != nil {
		return nil, fmt.Errorf("open raft stream to %s: %w", id, err)
	}
	c := l.adopt(s)
	if c == nil {
		return nil, net.ErrClosed
	}
	return c, nil
}

// peerAddr is a net.Addr naming a peer.
type peerAddr peer.ID

func (a peerAddr) Network() string { return "libp2p" }
func (a peerAddr) String() string  { return peer.ID(a).String() }

// streamConn adapts a libp2p stream to net.Conn, and tells its layer when
// it is closed.
type streamConn struct {
	network.Stream
	l *streamLayer
}

func (c *streamConn) LocalAddr() net.Addr  { return peerAddr(c.Conn().LocalPeer()) }
func (c *streamConn) RemoteAddr() net.Addr { return peerAddr(c.Conn().RemotePeer()) }

// Close implements net.Conn.
func (c *streamConn) Close() error {
	c.l.forget(c)
	return c.Stream.Close()
}

// Reset aborts the stream in both directions.
func (c *streamConn) Reset() error {
	c.l.forget(c)
	return c.Stream.Reset()
}
