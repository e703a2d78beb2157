package meshsource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	peermesh "github.com/tbfg/tbfg-node/mesh"
)

// pipeNet is an in-memory StreamMesh network: OpenStream runs the peer's
// handler on one end of a net.Pipe. Like the mesh, it resets the opener's
// stream when its ctx ends, closes a handler's stream when the handler
// returns and resets it if the handler panicked.
type pipeNet struct {
	t        testing.TB
	mu       sync.Mutex
	handlers map[string]peermesh.StreamHandler // by peer + "/" + name
	ctx      context.Context
	wg       sync.WaitGroup
	started  atomic.Int64 // handlers that began
	served   atomic.Int64 // handlers that returned
}

func newPipeNet(t testing.TB) *pipeNet {
	ctx, cancel := context.WithCancel(context.Background())
	n := &pipeNet{t: t, handlers: map[string]peermesh.StreamHandler{}, ctx: ctx}
	t.Cleanup(func() { cancel(); n.wg.Wait() })
	return n
}

// node is the StreamMesh of member id.
func (n *pipeNet) node(id string) *pipeNode { return &pipeNode{net: n, id: id} }

type pipeNode struct {
	net *pipeNet
	id  string
}

var _ StreamMesh = (*pipeNode)(nil)

func (p *pipeNode) HandleStream(name string, h peermesh.StreamHandler) error {
	p.net.mu.Lock()
	defer p.net.mu.Unlock()
	key := p.id + "/" + name
	if p.net.handlers[key] != nil {
		return fmt.Errorf("stream %q: handler already registered", name)
	}
	p.net.handlers[key] = h
	return nil
}

func (p *pipeNode) OpenStream(ctx context.Context, peer, name string) (io.ReadWriteCloser, error) {
	p.net.mu.Lock()
	h := p.net.handlers[peer+"/"+name]
	p.net.mu.Unlock()
	if h == nil {
		return nil, fmt.Errorf("open stream %q to %s: protocols not supported", name, peer)
	}
	c, s := net.Pipe()
	st := &pipeState{}
	client, server := &pipeStream{Conn: c, st: st}, &pipeStream{Conn: s, st: st}
	p.net.wg.Add(1)
	p.net.started.Add(1)
	go func() {
		defer p.net.wg.Done()
		defer p.net.served.Add(1)
		p.net.runHandler(h, p.id, server)
	}()
	client.stop = context.AfterFunc(ctx, func() { client.Reset() })
	return client, nil
}

func (n *pipeNet) runHandler(h peermesh.StreamHandler, from string, s *pipeStream) {
	defer func() {
		if r := recover(); r != nil {
			n.t.Errorf("stream handler panicked: %v", r)
			s.Reset()
		}
	}()
	h(n.ctx, from, s)
	s.Close()
}

// pipeState is shared by both ends: after a reset, the other end's reads
// fail instead of ending cleanly.
type pipeState struct{ reset atomic.Bool }

var errPipeReset = errors.New("stream reset")

type pipeStream struct {
	net.Conn
	st   *pipeState
	stop func() bool
}

func (s *pipeStream) Read(b []byte) (int, error) {
	n, err := s.Conn.Read(b)
	if err == io.EOF && s.st.reset.Load() {
		err = errPipeReset
	}
	return n, err
}

func (s *pipeStream) Close() error {
	if s.stop != nil {
		s.stop()
	}
	return s.Conn.Close()
}

func (s *pipeStream) Reset() error {
	s.st.reset.Store(true)
	return s.Close()
}
