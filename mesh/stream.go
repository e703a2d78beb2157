package mesh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"runtime/debug"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
)

// Stream is the value behind the io.ReadWriteCloser that OpenStream returns
// and that a StreamHandler receives; assert to it for half-close, reset and
// deadlines. Close closes both directions; Reset aborts them, so that the
// peer sees an error rather than a clean end of file.
type Stream interface {
	io.ReadWriteCloser
	// CloseWrite ends this side's writes (the peer reads io.EOF) while
	// reading goes on: how a request is ended before its response is read.
	CloseWrite() error
	// CloseRead discards whatever the peer sends from now on.
	CloseRead() error
	Reset() error
	SetDeadline(time.Time) error
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// StreamHandler serves one stream opened by a peer. peer is the peer ID of
// a member of the Raft configuration (streams from anyone else are reset
// before a handler sees them); s is a Stream. The handler need not close
// s: it is closed when the handler returns, or reset if the handler
// panicked (the panic is logged, the node carries on). ctx ends when the
// mesh closes, and s is then reset; Close waits for handlers to return.
type StreamHandler func(ctx context.Context, peer string, s io.ReadWriteCloser)

// streamNameRE is what a stream name may look like: it becomes part of a
// libp2p protocol ID.
var streamNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// streamProtocol is the libp2p protocol of the named peer stream.
func streamProtocol(name string) protocol.ID {
	return protocol.ID("/tbfg/stream/" + name + "/1")
}

func checkStreamName(name string) error {
	if !streamNameRE.MatchString(name) {
		return fmt.Errorf("stream name %q: want 1 to 64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit", name)
	}
	return nil
}

// HandleStream registers h for the peer streams called name, on protocol
// /tbfg/stream/<name>/1. The mesh does not know what the bytes mean: node
// uses such streams to move NARs, build logs and derivations between
// members. It may be called before or after Start; a name can be
// registered once.
func (m *Mesh) HandleStream(name string, h StreamHandler) error {
	if err := checkStreamName(name); err != nil {
		return err
	}
	if h == nil {
		return fmt.Errorf("stream %q: nil handler", name)
	}
	return m.streams.add(m, name, h)
}

// OpenStream opens the stream called name to the member peer (a peer ID),
// dialling it from the addresses the mesh knows (the address book, fed by
// join responses and gossip) if it is not connected. The peer must be in
// this node's Raft configuration: ErrNotMember otherwise. ctx bounds the
// dial and the stream's life: when ctx ends the stream is reset, as it is
// when the mesh closes. The caller must close the stream; it is a Stream.
func (m *Mesh) OpenStream(ctx context.Context, peerID string, name string) (io.ReadWriteCloser, error) {
	if err := checkStreamName(name); err != nil {
		return nil, err
	}
	if !m.started.Load() || m.ctx.Err() != nil {
		return nil, ErrClosed
	}
	p, err := peer.Decode(peerID)
	if err != nil {
		return nil, fmt.Errorf("open stream %q: peer id %q: %w", name, peerID, err)
	}
	switch {
	case p == m.host.ID():
		return nil, fmt.Errorf("open stream %q: %s is this node", name, shortID(peerID))
	case !m.isServer(peerID):
		return nil, fmt.Errorf("open stream %q to %s: %w", name, peerID, ErrNotMember)
	}
	connected := m.host.Network().Connectedness(p) == network.Connected
	if !connected {
		addToPeerstore(m.host.Peerstore(), peerID, m.book.get(peerID))
		addRelayAddrs(m.host, p, m.relays())
		if sw, ok := m.host.Network().(*swarm.Swarm); ok {
			sw.Backoff().Clear(p)
		}
	}
	s, err := m.host.NewStream(ctx, p, streamProtocol(name))
	if err != nil {
		if !connected {
			err = m.explainDialError(p, err)
		}
		return nil, fmt.Errorf("open stream %q to %s: %w", name, peerID, err)
	}
	ps := m.streams.adopt(ctx, s)
	if ps == nil {
		return nil, ErrClosed
	}
	return ps, nil
}

// isServer reports whether id is in this node's Raft configuration.
func (m *Mesh) isServer(id string) bool {
	rn := m.raftNode()
	if rn == nil {
		return false
	}
	for _, s := range rn.configuration().Servers {
		if string(s.ID) == id {
			return true
		}
	}
	return false
}

// serveStream is the libp2p handler running h for streams from members.
func (m *Mesh) serveStream(name string, h StreamHandler) network.StreamHandler {
	return func(s network.Stream) {
		if !m.track() {
			s.Reset()
			return
		}
		defer m.untrack()
		from := s.Conn().RemotePeer()
		if !m.isServer(from.String()) {
			m.log.Debug("refusing peer stream from a non-member", "stream", name, "peer", from)
			s.Reset()
			return
		}
		ctx, cancel := context.WithCancel(m.ctx)
		defer cancel()
		// Registered after cancel, so it runs first: a stream closed by
		// a handler that returned is not reset afterwards.
		stop := context.AfterFunc(ctx, func() { s.Reset() })
		defer stop()
		if m.runHandler(ctx, name, from, h, &peerStream{Stream: s}) {
			s.Close()
		} else {
			s.Reset()
		}
	}
}

// runHandler calls h, turning a panic into a log record; false if h
// panicked.
func (m *Mesh) runHandler(ctx context.Context, name string, from peer.ID, h StreamHandler, s *peerStream) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			m.log.Error("peer stream handler panicked", "stream", name, "peer", from, "panic", r, "stack", string(debug.Stack()))
			ok = false
		}
	}()
	h(ctx, from.String(), s)
	return true
}

// peerStream is a Stream; release, if set, unregisters an outgoing stream.
type peerStream struct {
	network.Stream
	once    sync.Once
	release func()
}

func (s *peerStream) done() {
	if s.release != nil {
		s.once.Do(s.release)
	}
}

// Close implements io.Closer.
func (s *peerStream) Close() error {
	s.done()
	return s.Stream.Close()
}

// Reset implements Stream.
func (s *peerStream) Reset() error {
	s.done()
	return s.Stream.Reset()
}

// streamRegistry holds the peer stream handlers until the host exists, and
// the outgoing streams, which Close resets.
type streamRegistry struct {
	mu       sync.Mutex
	handlers map[string]StreamHandler
	attached bool
	closed   bool
	open     map[*peerStream]struct{}
}

func newStreamRegistry() *streamRegistry {
	return &streamRegistry{handlers: map[string]StreamHandler{}, open: map[*peerStream]struct{}{}}
}

// add registers a handler, with the host at once if it runs.
func (r *streamRegistry) add(m *Mesh, name string, h StreamHandler) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.closed:
		return ErrClosed
	case r.handlers[name] != nil:
		return fmt.Errorf("stream %q: %w", name, errDuplicateStream)
	}
	r.handlers[name] = h
	if r.attached {
		m.host.SetStreamHandler(streamProtocol(name), m.serveStream(name, h))
	}
	return nil
}

var errDuplicateStream = errors.New("handler already registered")

// attach registers every handler with the host, once it runs.
func (r *streamRegistry) attach(m *Mesh) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attached = true
	for name, h := range r.handlers {
		m.host.SetStreamHandler(streamProtocol(name), m.serveStream(name, h))
	}
}

// adopt tracks an outgoing stream until it is closed, reset, ctx ends or
// the mesh closes; nil (and s reset) after the mesh closed.
func (r *streamRegistry) adopt(ctx context.Context, s network.Stream) *peerStream {
	ps := &peerStream{Stream: s}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		s.Reset()
		return nil
	}
	// stop is set before release can run: release takes r.mu, held here.
	var stop func() bool
	ps.release = func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		stop()
		delete(r.open, ps)
	}
	r.open[ps] = struct{}{}
	stop = context.AfterFunc(ctx, func() { ps.Reset() })
	return ps
}

// closeAll resets every outgoing stream and refuses new ones.
func (r *streamRegistry) closeAll() {
	r.mu.Lock()
	r.closed = true
	open := r.open
	r.open = map[*peerStream]struct{}{}
	r.mu.Unlock()
	for ps := range open {
		ps.Stream.Reset()
	}
}
