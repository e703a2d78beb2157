package mesh

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/tbfg/tbfg-node/internal/raftdb"
)

// membership is what the mesh knows about who belongs: a cache of the Raft
// configuration (for the gossip validator), nodes the leader has just
// admitted, who may become a voter, and the last time each member was heard.
type membership struct {
	mu        sync.Mutex
	servers   map[string]raft.ServerSuffrage
	admitted  map[string]time.Time // by this node as leader, not yet replicated to all
	eligible  map[string]bool      // may be a voter (join request or gossip)
	found     map[peer.ID]bool     // found by mDNS
	heard     map[string]time.Time // leader only: last time a member was healthy
	dialErr   error                // last failed dial, to explain a failed join
	rejected  error                // last dial that looked like a wrong secret
	rejecters map[peer.ID]bool     // peers whose rejection was logged
	joinErr   error                // why the last join attempt failed
	joined    bool                 // this node belongs to a cluster
	detached  time.Time            // last rejoin attempt
	wasLeader bool
}

func newMembership() *membership {
	return &membership{
		servers: map[string]raft.ServerSuffrage{}, admitted: map[string]time.Time{},
		eligible: map[string]bool{}, found: map[peer.ID]bool{}, heard: map[string]time.Time{},
		rejecters: map[peer.ID]bool{},
	}
}

func (s *membership) noteFound(p peer.ID) {
	s.mu.Lock()
	s.found[p] = true
	s.mu.Unlock()
}

// noteDialError records a failed dial; first tells whether it is the first
// rejected secret seen from p.
func (s *membership) noteDialError(p peer.ID, err error) (first bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dialErr = err
	if !errors.Is(err, ErrSecretRejected) {
		return false
	}
	s.rejected = err
	first = !s.rejecters[p]
	s.rejecters[p] = true
	return first
}

// noteDialError records a failed dial to p and logs, once per peer, a
// rejected secret: a node stuck joining a mesh with the wrong secret
// would otherwise say nothing until it is stopped.
func (m *Mesh) noteDialError(p peer.ID, err error) {
	if m.mem.noteDialError(p, err) {
		m.log.Warn(fmt.Sprintf("mesh secret rejected by peer %s: wrong secret?", p), "error", err)
	}
}

func (s *membership) setJoinErr(err error) {
	s.mu.Lock()
	s.joinErr = err
	s.mu.Unlock()
}

// joinProblem is the best explanation of why this node is not a member
// yet: a rejected secret if any dial looked like one, else the last join
// attempt's error, else the last failed dial.
func (s *membership) joinProblem() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.rejected != nil:
		return s.rejected
	case s.joinErr != nil:
		return s.joinErr
	}
	return s.dialErr
}

// JoinStatus tells whether this node is trying to become a member of its
// mesh (Start was called and has not yet made it one, as for a fresh node
// looking for a leader) and, if so, the latest problem in the way, such as
// ErrSecretRejected (wrapped, naming the peer) or "no member found";
// lastErr is nil while no attempt has failed yet, and both are zero once
// the node is a member, before Start and after Close. It is safe to call at
// any time, also while Start runs.
func (m *Mesh) JoinStatus() (joining bool, lastErr error) {
	if !m.begun.Load() || m.ctx.Err() != nil || m.mem.isJoined() {
		return false, nil
	}
	return true, m.mem.joinProblem()
}

// lastDialError is the error that best explains why no peer could be
// reached: a rejected secret if any dial looked like one.
func (s *membership) lastDialError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rejected != nil {
		return s.rejected
	}
	return s.dialErr
}

func (s *membership) setEligible(id string, voter bool) {
	s.mu.Lock()
	s.eligible[id] = voter
	s.mu.Unlock()
}

// isMember tells the gossip validator whether id may publish: a server of
// the configuration, or a node admitted moments ago.
func (s *membership) isMember(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.servers[id]; ok {
		return true
	}
	t, ok := s.admitted[id]
	return ok && time.Since(t) < time.Minute
}

func (s *membership) setServers(cfg raft.Configuration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.servers)
	for _, srv := range cfg.Servers {
		s.servers[string(srv.ID)] = srv.Suffrage
	}
}

func (s *membership) setJoined(v bool) {
	s.mu.Lock()
	s.joined = v
	s.mu.Unlock()
}

func (s *membership) isJoined() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.joined
}

// startMembership starts Raft, the membership loop, and, for a fresh node,
// bootstraps or joins.
func (m *Mesh) startMembership(ctx context.Context) error {
	explicit := m.explicitPeers()
	hadState, ownCID, err := m.inspectRaftState()
	if err != nil {
		return err
	}
	if hadState && !m.cfg.Bootstrap && m.preflightForeign(ctx, explicit, ownCID) {
		m.log.Warn("raft history belongs to another cluster; wiping it", "cluster", ownCID)
		if err := os.RemoveAll(m.raftDir()); err != nil {
			return fmt.Errorf("wipe raft state: %w", err)
		}
		hadState = false
	}
	rn, err := m.openRaft()
	if err != nil {
		return err
	}
	if _, err := m.swapRaft(rn); err != nil {
		return err
	}
	m.goLoop(func() { m.membershipLoop(explicit) })
	m.goLoop(m.publishLoop)
	switch {
	case hadState:
		m.mem.setJoined(true)
		return nil
	case m.cfg.Bootstrap:
		return m.bootstrapSelf(rn)
	case m.cfg.BootstrapExpect > 0:
		return m.expectLoop(ctx, explicit)
	}
	return m.joinLoop(ctx, explicit)
}

// inspectRaftState reads whether DataDir/raft holds history, and its
// cluster ID, without starting Raft.
func (m *Mesh) inspectRaftState() (bool, string, error) {
	if _, err := os.Stat(m.raftDir()); errors.Is(err, os.ErrNotExist) {
		return false, "", nil
	}
	store, err := raftdb.Open(m.raftDB(), m.log)
	if err != nil {
		return false, "", fmt.Errorf("open raft log: %w", err)
	}
	defer store.Close()
	snaps, err := raft.NewFileSnapshotStore(m.raftDir(), 2, io.Discard)
	if err != nil {
		return false, "", fmt.Errorf("open raft snapshots: %w", err)
	}
	has, err := raft.HasExistingState(store, store, snaps)
	if err != nil {
		return false, "", fmt.Errorf("read raft state: %w", err)
	}
	cid, _ := store.Get(clusterIDKey)
	return has, string(cid), nil
}

// preflightForeign asks known peers for their cluster ID before Raft starts
// on existing history. The first peer that belongs to a cluster decides: if
// it is another cluster, this node's history is foreign. With nobody
// answering within a few election timeouts the history is kept.
func (m *Mesh) preflightForeign(ctx context.Context, explicit []peer.ID, own string) bool {
	candidates := m.candidates(explicit)
	if len(candidates) == 0 && !m.cfg.MDNS {
		return false
	}
	deadline := time.Now().Add(max(8*m.cfg.Timing.ElectionTimeout, 2*time.Second))
	for time.Now().Before(deadline) {
		for _, p := range m.candidates(explicit) {
			if err := m.connect(p); err != nil {
				m.noteDialError(p, err)
				continue
			}
			resp, err := m.call(ctx, p, &rpcRequest{Kind: kindHello})
			if err != nil || resp.Hello == nil || resp.Hello.ClusterID == "" {
				continue
			}
			return resp.Hello.ClusterID != own
		}
		if !sleepCtx(ctx, m.retryBase()*5) || m.ctx.Err() != nil {
			return false
		}
	}
	return false
}

// candidates lists the peers worth asking about the mesh: explicit peers,
// peers found by mDNS, the address book and current connections.
func (m *Mesh) candidates(explicit []peer.ID) []peer.ID {
	seen := map[peer.ID]bool{m.host.ID(): true}
	var out []peer.ID
	add := func(p peer.ID) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, p := range explicit {
		add(p)
	}
	for id := range m.book.all() {
		if p, err := peer.Decode(id); err == nil {
			add(p)
		}
	}
	m.mem.mu.Lock()
	for p := range m.mem.found {
		add(p)
	}
	m.mem.mu.Unlock()
	for _, p := range m.host.Network().Peers() {
		add(p)
	}
	return out
}

// bootstrapSelf creates a one-node cluster with a new cluster ID.
func (m *Mesh) bootstrapSelf(rn *raftNode) error {
	if err := rn.setClusterID(newClusterID()); err != nil {
		return err
	}
	self := raft.ServerID(m.ID())
	cfg := raft.Configuration{Servers: []raft.Server{{ID: self, Address: raft.ServerAddress(self), Suffrage: raft.Voter}}}
	if err := rn.await(rn.r.BootstrapCluster(cfg)); err != nil {
		return fmt.Errorf("bootstrap cluster: %w", err)
	}
	m.mem.setJoined(true)
	m.log.Info("bootstrapped a new mesh")
	return nil
}

// joinRequest describes this node to the leader.
func (m *Mesh) joinRequest() *joinRequest {
	jr := &joinRequest{ID: m.ID(), Addrs: m.Addrs(), Voter: m.cfg.Voter}
	if rn := m.raftNode(); rn != nil {
		jr.LastIndex = rn.r.LastIndex()
		jr.HasState = jr.LastIndex > 0
		jr.ClusterID = rn.clusterID()
	}
	return jr
}

// joinLoop asks connected peers to add this node until one answers yes.
func (m *Mesh) joinLoop(ctx context.Context, explicit []peer.ID) error {
	var last error
	for {
		ok, err := m.tryJoin(ctx, explicit)
		if ok {
			return nil
		}
		if err != nil {
			last = err
			m.mem.setJoinErr(err)
		} else if last == nil {
			m.mem.setJoinErr(errors.New("no member found"))
		}
		if !sleepCtx(ctx, max(m.cfg.Timing.ElectionTimeout, 100*time.Millisecond)) || m.ctx.Err() != nil {
			return m.joinFailure(ctx, last)
		}
	}
}

func (m *Mesh) joinFailure(ctx context.Context, last error) error {
	if de := m.mem.lastDialError(); errors.Is(de, ErrSecretRejected) {
		last = de
	}
	if last == nil {
		last = m.mem.lastDialError()
	}
	if last == nil {
		last = errors.New("no member found")
	}
	return fmt.Errorf("join mesh: %w: %w", context.Cause(ctx), last)
}

// tryJoin sends one join request to each candidate until one succeeds.
func (m *Mesh) tryJoin(ctx context.Context, explicit []peer.ID) (bool, error) {
	var last error
	for _, p := range m.candidates(explicit) {
		if m.host.Network().Connectedness(p) != network.Connected {
			m.dialMissing([]peer.ID{p})
			continue
		}
		resp, err := m.call(ctx, p, &rpcRequest{Kind: kindJoin, Join: m.joinRequest()})
		var re *rpcError
		if errors.As(err, &re) && re.Code == codeForeign {
			if err := m.wipeForeign(); err != nil {
				return false, err
			}
			continue
		}
		if err != nil {
			last = err
			continue
		}
		return true, m.joined(resp.Join)
	}
	return false, last
}

// joined records what the leader answered to a successful join.
func (m *Mesh) joined(jr *joinResponse) error {
	if jr == nil {
		return errors.New("join response without body")
	}
	if rn := m.raftNode(); rn != nil {
		if err := rn.setClusterID(jr.ClusterID); err != nil {
			return err
		}
	}
	for id, addrs := range jr.Peers {
		m.book.set(id, addrs)
		addToPeerstore(m.host.Peerstore(), id, addrs)
	}
	m.mem.setJoined(true)
	m.log.Info("joined mesh", "cluster", jr.ClusterID)
	return nil
}

// wipeForeign resets the state machine and wipes Raft history that the
// leader refused as another cluster's.
func (m *Mesh) wipeForeign() error {
	m.wipeMu.Lock()
	defer m.wipeMu.Unlock()
	rn, err := m.swapRaft(nil)
	if err != nil {
		return err
	}
	if rn != nil {
		rn.close()
	}
	if err := m.cfg.FSM.Restore(io.NopCloser(bytes.NewReader(nil))); err != nil {
		return fmt.Errorf("%w: state machine cannot be reset (%w); remove %s and restart", ErrForeignCluster, err, m.raftDir())
	}
	return m.wipeRaft()
}

// handleJoin runs on the leader: it admits a node as a non-voter, refusing
// Raft history from another cluster.
func (m *Mesh) handleJoin(rn *raftNode, jr *joinRequest) *rpcResponse {
	if f := m.hooks.join.Load(); f != nil {
		(*f)()
	}
	own := rn.clusterID()
	if jr.HasState && jr.ClusterID != own {
		return &rpcResponse{Code: codeForeign, Err: fmt.Sprintf("node holds raft history of cluster %q, this is %q; it must wipe it", jr.ClusterID, own)}
	}
	m.book.set(jr.ID, jr.Addrs)
	addToPeerstore(m.host.Peerstore(), jr.ID, jr.Addrs)
	m.mem.setEligible(jr.ID, jr.Voter)
	m.mem.mu.Lock()
	m.mem.admitted[jr.ID] = time.Now()
	m.mem.mu.Unlock()
	if err := m.admit(rn, jr); err != nil {
		return &rpcResponse{Code: codeFailed, Err: err.Error()}
	}
	peers := m.book.all()
	peers[m.ID()] = m.Addrs()
	return &rpcResponse{Join: &joinResponse{ClusterID: own, Peers: peers}}
}

// admit adds jr's node as a non-voter unless it is already a server with
// its history; a server that lost its history is removed and added again.
func (m *Mesh) admit(rn *raftNode, jr *joinRequest) error {
	id := raft.ServerID(jr.ID)
	in := slices.ContainsFunc(rn.configuration().Servers, func(s raft.Server) bool { return s.ID == id })
	if in && jr.HasState {
		return nil
	}
	if in {
		if err := rn.await(rn.r.RemoveServer(id, 0, rpcTimeout)); err != nil {
			return fmt.Errorf("remove %s before re-adding it: %w", id, err)
		}
	}
	if err := rn.await(rn.r.AddNonvoter(id, raft.ServerAddress(id), 0, rpcTimeout)); err != nil {
		return fmt.Errorf("add %s: %w", id, err)
	}
	m.log.Info("admitted node", "peer", jr.ID, "voter_eligible", jr.Voter)
	return nil
}

// handleRemove runs on the leader for Leave.
func (m *Mesh) handleRemove(rn *raftNode, id string) *rpcResponse {
	if err := rn.await(rn.r.RemoveServer(raft.ServerID(id), 0, rpcTimeout)); err != nil {
		return &rpcResponse{Code: codeFailed, Err: fmt.Sprintf("remove %s: %v", id, err)}
	}
	return &rpcResponse{}
}

// hello describes this node for bootstrap-expect and the foreign-history
// check.
func (m *Mesh) hello() *hello {
	h := &hello{ID: m.ID(), Expect: m.cfg.BootstrapExpect, Voter: m.cfg.Voter}
	rn := m.raftNode()
	if rn == nil {
		return h
	}
	h.ClusterID = rn.clusterID()
	h.Fresh = rn.r.LastIndex() == 0
	h.Leader = m.Leader()
	for _, s := range rn.configuration().Servers {
		h.Servers = append(h.Servers, string(s.ID))
	}
	return h
}

// expectLoop waits until BootstrapExpect fresh nodes see each other and
// bootstraps them all with the same configuration, or joins if a cluster
// already exists.
func (m *Mesh) expectLoop(ctx context.Context, explicit []peer.ID) error {
	n := m.cfg.BootstrapExpect
	for {
		fresh := []hello{*m.hello()}
		for _, p := range m.candidates(explicit) {
			if m.host.Network().Connectedness(p) != network.Connected {
				m.dialMissing([]peer.ID{p})
				continue
			}
			resp, err := m.call(ctx, p, &rpcRequest{Kind: kindHello})
			if err != nil || resp.Hello == nil {
				continue
			}
			if h := resp.Hello; slices.Contains(h.Servers, m.ID()) {
				return m.adoptCluster(h.ClusterID)
			} else if h.ClusterID != "" {
				return m.joinLoop(ctx, explicit)
			} else if h.Fresh && h.Expect == n {
				fresh = append(fresh, *h)
			}
		}
		if len(fresh) >= n {
			return m.bootstrapExpected(ctx, explicit, fresh, n)
		}
		if !sleepCtx(ctx, max(m.cfg.Timing.ElectionTimeout, 100*time.Millisecond)) || m.ctx.Err() != nil {
			return m.joinFailure(ctx, fmt.Errorf("saw %d of %d expected nodes", len(fresh), n))
		}
	}
}

// bootstrapExpected bootstraps with the n smallest peer IDs among fresh; a
// node outside that set joins instead. Every node of the set computes the
// same configuration and cluster ID, which is what makes concurrent
// bootstraps safe.
func (m *Mesh) bootstrapExpected(ctx context.Context, explicit []peer.ID, fresh []hello, n int) error {
	slices.SortFunc(fresh, func(a, b hello) int { return strings.Compare(a.ID, b.ID) })
	fresh = slices.CompactFunc(fresh, func(a, b hello) bool { return a.ID == b.ID })[:min(n, len(fresh))]
	if len(fresh) < n || !slices.ContainsFunc(fresh, func(h hello) bool { return h.ID == m.ID() }) {
		return m.joinLoop(ctx, explicit)
	}
	var cfg raft.Configuration
	ids := make([]string, 0, n)
	voters := 0
	for _, h := range fresh {
		s := raft.Server{ID: raft.ServerID(h.ID), Address: raft.ServerAddress(h.ID), Suffrage: raft.Nonvoter}
		if h.Voter && voters < voterTarget(n) {
			s.Suffrage = raft.Voter
			voters++
		}
		cfg.Servers = append(cfg.Servers, s)
		ids = append(ids, h.ID)
		m.mem.setEligible(h.ID, h.Voter)
	}
	if voters == 0 {
		return errors.New("bootstrap-expect: no node may be a voter")
	}
	sum := sha256.Sum256([]byte(strings.Join(ids, ",")))
	rn := m.raftNode()
	if err := rn.setClusterID(hex.EncodeToString(sum[:16])); err != nil {
		return err
	}
	if err := rn.await(rn.r.BootstrapCluster(cfg)); err != nil {
		return fmt.Errorf("bootstrap cluster of %d: %w", n, err)
	}
	m.mem.setJoined(true)
	m.log.Info("bootstrapped mesh with expected nodes", "nodes", n)
	return nil
}

// adoptCluster records the cluster that a bootstrap-expect peer created
// with this node in it; Raft replicates the configuration by itself.
func (m *Mesh) adoptCluster(cid string) error {
	rn := m.raftNode()
	if rn == nil {
		return ErrClosed
	}
	if err := rn.setClusterID(cid); err != nil {
		return err
	}
	m.mem.setJoined(true)
	return nil
}

// voterTarget is how many voters a cluster of n servers should have.
func voterTarget(n int) int {
	switch {
	case n < 3:
		return 1
	case n < 5:
		return 3
	}
	return 5
}
