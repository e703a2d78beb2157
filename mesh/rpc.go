package mesh

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// rpcProtocol carries the mesh's own requests: hello, join, apply and remove.
// A stream holds one request and its response, each a frame: a 4-byte
// big-endian length and that many bytes of JSON.
const rpcProtocol = protocol.ID("/tbfg/rpc/1")

// maxFrame bounds one request or response, so a peer cannot make this node
// allocate without limit.
const maxFrame = 32 << 20

// maxHops bounds forwarding between nodes that disagree on the leader.
const maxHops = 3

// Request kinds.
const (
	kindHello  = "hello"
	kindJoin   = "join"
	kindApply  = "apply"
	kindRemove = "remove"
)

// Response codes telling the caller what to do next.
const (
	codeNotLeader = "not_leader" // retry against the current leader
	codeNoLeader  = "no_leader"  // retry later
	codeForeign   = "foreign"    // the joiner's Raft history is from another cluster
	codeFSM       = "fsm"        // the state machine returned an error
	codeBad       = "bad_request"
	codeFailed    = "failed"
)

type rpcRequest struct {
	Kind string       `json:"kind"`
	Hops int          `json:"hops,omitempty"`
	Join *joinRequest `json:"join,omitempty"`
	Cmd  []byte       `json:"cmd,omitempty"`
	ID   string       `json:"id,omitempty"` // node to remove
}

// joinRequest asks the leader to add a node. HasState and ClusterID let the
// leader refuse Raft history from another cluster.
type joinRequest struct {
	ID        string   `json:"id"`
	Addrs     []string `json:"addrs"`
	Voter     bool     `json:"voter"`
	HasState  bool     `json:"has_state"`
	ClusterID string   `json:"cluster_id"`
	LastIndex uint64   `json:"last_index"`
}

type joinResponse struct {
	ClusterID string              `json:"cluster_id"`
	Peers     map[string][]string `json:"peers"`
}

// hello describes a node to one that is deciding whether to bootstrap or
// whether its own Raft history belongs to this mesh.
type hello struct {
	ID        string `json:"id"`
	ClusterID string `json:"cluster_id"`
	Fresh     bool   `json:"fresh"`
	Expect    int    `json:"expect"`
	Voter     bool   `json:"voter"`
	Leader    string `json:"leader"`
	// Servers is the node's Raft configuration, so that a node that a
	// bootstrap-expect peer already put in it waits for replication
	// instead of joining.
	Servers []string `json:"servers,omitempty"`
}

type rpcResponse struct {
	Code   string        `json:"code,omitempty"`
	Err    string        `json:"err,omitempty"`
	Leader string        `json:"leader,omitempty"`
	Hello  *hello        `json:"hello,omitempty"`
	Join   *joinResponse `json:"join,omitempty"`
	Resp   []byte        `json:"resp,omitempty"`
	// Index is the Raft index that committed an applied command, so that
	// the caller can wait for its own replica to reach it before reading.
	Index uint64 `json:"index,omitempty"`
}

// rpcError is a failed rpcResponse seen by the caller.
type rpcError struct {
	Peer, Code, Msg string
}

func (e *rpcError) Error() string { return fmt.Sprintf("peer %s: %s: %s", e.Peer, e.Code, e.Msg) }

func writeFrame(w io.Writer, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(data) > maxFrame {
		return fmt.Errorf("message of %d bytes exceeds %d", len(data), maxFrame)
	}
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(data)))
	if _, err := w.Write(append(hdr[:], data...)); err != nil {
		return err
	}
	return nil
}

func readFrame(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("read frame length: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxFrame {
		return nil, fmt.Errorf("frame of %d bytes exceeds %d", n, maxFrame)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("read frame body: %w", err)
	}
	return buf, nil
}

// decodeRequest parses and checks a request received from a peer.
func decodeRequest(data []byte) (*rpcRequest, error) {
	var req rpcRequest
	if err := json.Unmarshal(data, &req); err != nil {
		return nil, fmt.Errorf("decode rpc request: %w", err)
	}
	if req.Hops < 0 || req.Hops > maxHops {
		return nil, fmt.Errorf("rpc request: hops %d outside 0..%d", req.Hops, maxHops)
	}
	switch req.Kind {
	case kindHello:
	case kindApply:
		if req.Cmd == nil {
			return nil, errors.New("rpc apply request: no command")
		}
	case kindJoin:
		if req.Join == nil {
			return nil, errors.New("rpc join request: no join field")
		}
		if _, err := peer.Decode(req.Join.ID); err != nil {
			return nil, fmt.Errorf("rpc join request: id %q: %w", req.Join.ID, err)
		}
		if len(req.Join.Addrs) > maxAddrs {
			return nil, fmt.Errorf("rpc join request: %d addresses, at most %d", len(req.Join.Addrs), maxAddrs)
		}
	case kindRemove:
		if _, err := peer.Decode(req.ID); err != nil {
			return nil, fmt.Errorf("rpc remove request: id %q: %w", req.ID, err)
		}
	default:
		return nil, fmt.Errorf("rpc request: unknown kind %q", req.Kind)
	}
	return &req, nil
}

// rpcIdle is how long a request stream may stay idle before its server
// end closes it.
const rpcIdle = 2 * time.Minute

// handleRPC serves the requests of one stream, one after another: callers
// keep streams to the leader open and reuse them.
func (m *Mesh) handleRPC(s network.Stream) {
	if !m.track() {
		s.Reset()
		return
	}
	defer m.untrack()
	defer s.Close()
	// An idle stream waits in readFrame; Close must not wait for rpcIdle.
	stop := context.AfterFunc(m.ctx, func() { s.Reset() })
	defer stop()
	r := bufio.NewReader(s)
	for m.ctx.Err() == nil {
		s.SetReadDeadline(time.Now().Add(rpcIdle))
		data, err := readFrame(r)
		if err != nil {
			return
		}
		var resp *rpcResponse
		req, err := decodeRequest(data)
		if err != nil {
			resp = &rpcResponse{Code: codeBad, Err: err.Error()}
		} else {
			resp = m.serve(m.ctx, s.Conn().RemotePeer(), req)
		}
		s.SetWriteDeadline(time.Now().Add(rpcTimeout))
		if err := writeFrame(s, resp); err != nil {
			s.Reset()
			return
		}
	}
}

// serve answers one request.
func (m *Mesh) serve(ctx context.Context, from peer.ID, req *rpcRequest) *rpcResponse {
	switch req.Kind {
	case kindHello:
		return &rpcResponse{Hello: m.hello()}
	case kindJoin:
		return m.leaderOnly(ctx, req, func(rn *raftNode) *rpcResponse { return m.handleJoin(rn, req.Join) })
	case kindRemove:
		return m.leaderOnly(ctx, req, func(rn *raftNode) *rpcResponse { return m.handleRemove(rn, req.ID) })
	default:
		return m.leaderOnly(ctx, req, func(rn *raftNode) *rpcResponse { return applyOn(rn, req.Cmd) })
	}
}

// leaderOnly runs f on the leader, or forwards req to the leader. f gets
// the Raft it was checked against: Close may take it from the mesh
// meanwhile, and then f's calls fail with raft.ErrRaftShutdown.
func (m *Mesh) leaderOnly(ctx context.Context, req *rpcRequest, f func(*raftNode) *rpcResponse) *rpcResponse {
	rn := m.raftNode()
	if rn == nil {
		return &rpcResponse{Code: codeNoLeader, Err: "raft not running"}
	}
	_, leader := rn.r.LeaderWithID()
	switch {
	case leader == "":
		return &rpcResponse{Code: codeNoLeader, Err: "no leader elected"}
	case string(leader) == m.ID():
		return f(rn)
	case req.Hops >= maxHops:
		return &rpcResponse{Code: codeNotLeader, Err: "too many forwards", Leader: string(leader)}
	}
	fwd := *req
	fwd.Hops++
	id, err := peer.Decode(string(leader))
	if err != nil {
		return &rpcResponse{Code: codeFailed, Err: err.Error()}
	}
	resp, err := m.roundTrip(ctx, id, &fwd)
	if err != nil {
		return &rpcResponse{Code: codeNoLeader, Err: err.Error(), Leader: string(leader)}
	}
	return resp
}

// roundTrip sends one request to p and reads its response, on a pooled
// stream if one is idle. A pooled stream that fails before the request is
// written (the peer closed it meanwhile) is replaced by a fresh one: nothing
// was sent, so nothing can be applied twice.
func (m *Mesh) roundTrip(ctx context.Context, p peer.ID, req *rpcRequest) (*rpcResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	if ps := m.pool.get(p); ps != nil {
		resp, sent, err := m.exchange(ctx, ps, req)
		if err == nil || sent {
			return resp, err
		}
	}
	connected := m.host.Network().Connectedness(p) == network.Connected
	s, err := m.host.NewStream(ctx, p, rpcProtocol)
	if err != nil && connected {
		return nil, fmt.Errorf("open %s stream to %s: %w", req.Kind, p, err)
	}
	if err != nil {
		return nil, m.explainDialError(p, err)
	}
	resp, _, err := m.exchange(ctx, &pooledStream{s: s, r: bufio.NewReader(s)}, req)
	return resp, err
}

// exchange writes req on ps and reads the response; sent tells whether the
// request may have reached the peer. On success ps goes back to the pool.
func (m *Mesh) exchange(ctx context.Context, ps *pooledStream, req *rpcRequest) (_ *rpcResponse, sent bool, _ error) {
	p := ps.s.Conn().RemotePeer()
	d, _ := ctx.Deadline()
	ps.s.SetDeadline(d)
	stop := context.AfterFunc(ctx, func() { ps.s.Reset() })
	defer stop()
	if err := writeFrame(ps.s, req); err != nil {
		ps.s.Reset()
		return nil, false, fmt.Errorf("send %s request to %s: %w", req.Kind, p, err)
	}
	data, err := readFrame(ps.r)
	if err != nil {
		ps.s.Reset()
		return nil, true, fmt.Errorf("read %s response from %s: %w", req.Kind, p, err)
	}
	var resp rpcResponse
	if err := json.Unmarshal(data, &resp); err != nil {
		ps.s.Reset()
		return nil, true, fmt.Errorf("decode %s response from %s: %w", req.Kind, p, err)
	}
	if stop() {
		m.pool.put(p, ps)
	}
	return &resp, true, nil
}

// pooledStream is an open request stream with its buffered reader.
type pooledStream struct {
	s    network.Stream
	r    *bufio.Reader
	idle time.Time // when it was put back
}

// streamPool keeps a few idle request streams per peer.
type streamPool struct {
	mu     sync.Mutex
	idle   map[peer.ID][]*pooledStream
	closed bool
}

const maxIdleStreams = 4

func (sp *streamPool) get(p peer.ID) *pooledStream {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	for l := sp.idle[p]; len(l) > 0; l = sp.idle[p] {
		ps := l[len(l)-1]
		sp.idle[p] = l[:len(l)-1]
		// The server end closes a stream idle for rpcIdle; one idle for
		// half of that is not worth the risk of a request lost in between.
		if time.Since(ps.idle) < rpcIdle/2 {
			return ps
		}
		ps.s.Close()
	}
	return nil
}

func (sp *streamPool) put(p peer.ID, ps *pooledStream) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.closed || len(sp.idle[p]) >= maxIdleStreams {
		ps.s.Close()
		return
	}
	ps.s.SetDeadline(time.Time{})
	ps.idle = time.Now()
	if sp.idle == nil {
		sp.idle = map[peer.ID][]*pooledStream{}
	}
	sp.idle[p] = append(sp.idle[p], ps)
}

// close closes every idle stream; later puts close theirs.
func (sp *streamPool) close() {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	sp.closed = true
	for _, l := range sp.idle {
		for _, ps := range l {
			ps.s.Close()
		}
	}
	sp.idle = nil
}

// rpcTimeout bounds one request, including a command's commit on the leader.
const rpcTimeout = 30 * time.Second

// call is roundTrip that turns a failed response into an *rpcError.
func (m *Mesh) call(ctx context.Context, p peer.ID, req *rpcRequest) (*rpcResponse, error) {
	resp, err := m.roundTrip(ctx, p, req)
	if err != nil {
		return nil, err
	}
	if resp.Code != "" {
		return resp, &rpcError{Peer: p.String(), Code: resp.Code, Msg: resp.Err}
	}
	return resp, nil
}
