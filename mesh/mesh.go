package mesh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Config configures one node's view of the mesh. Zero values get the defaults
// documented on each field.
type Config struct {
	// DataDir holds this node's libp2p identity (identity.key), Raft state
	// (raft/) and address book (peers.json).
	DataDir string
	// Secret is the 32-byte private-network key shared by every member.
	Secret []byte
	// ListenAddrs are libp2p multiaddrs, default /ip4/0.0.0.0/tcp/8760.
	ListenAddrs []string
	// Interfaces names the network interfaces whose addresses are announced;
	// empty means every non-loopback interface. mDNS itself cannot be limited
	// to them (go-libp2p's mdns uses every multicast interface), but
	// addresses learned by mDNS outside their subnets are ignored.
	Interfaces []string
	// MDNS turns LAN discovery on.
	MDNS bool
	// Peers are explicit multiaddrs ending in /p2p/<id> to dial at start.
	Peers []string
	// Voter is false for nodes that must never become Raft voters (laptops).
	Voter bool
	// Bootstrap makes this node bootstrap a new single-node cluster if it has no
	// Raft state (tbfg-node init). Only init or BootstrapExpect may bootstrap.
	Bootstrap bool
	// BootstrapExpect, when > 0, bootstraps once that many fresh nodes see
	// each other (all started with the same value).
	BootstrapExpect int
	// Relay says whether this node relays for other members; empty means
	// RelayAuto.
	Relay RelayMode
	// PublicRanges are address ranges libp2p should treat as public
	// although they are private or reserved (TreatAsPublic). They apply
	// to the whole process.
	PublicRanges []netip.Prefix
	// Timing is the Raft timing profile: DefaultTiming, LANTiming or TestTiming.
	Timing Timing
	// RemoveAfter is how long a member may be silent before the leader removes
	// it from the configuration; default 1 minute.
	RemoveAfter time.Duration
	// GossipInterval is how often the node publishes its status; default 3s.
	GossipInterval time.Duration
	// FSM is the replicated state machine. Its Apply must return nil, a []byte
	// or an error, because responses travel back over the network to the node
	// that submitted the command. Restore given an empty snapshot must reset
	// it to its initial state: the mesh does that before it wipes Raft
	// history that belongs to another cluster.
	FSM raft.FSM
	// LocalStatus is called at every gossip tick for the status to publish.
	LocalStatus func() NodeStatus
	// Logger receives the mesh's logs, and Raft's bridged into it. (libp2p
	// logs through its own process-wide slog handler.)
	Logger *slog.Logger

	// batchApplyCh sets raft.Config.BatchApplyCh; off in every node, on
	// only for BenchmarkApplyConcurrent's comparison (DESIGN.md, Commits
	// and durability).
	batchApplyCh bool
}

// Timing is a Raft timing profile.
type Timing struct {
	HeartbeatTimeout, ElectionTimeout, LeaderLeaseTimeout, CommitTimeout time.Duration
}

// NodeStatus is what a node gossips about itself every GossipInterval.
type NodeStatus struct {
	Systems       []string `json:"systems"`
	Features      []string `json:"features"`
	MaxBuilds     int      `json:"max_builds"`
	RunningBuilds int      `json:"running_builds"`
	Load1         float64  `json:"load1"`
	// MaxLoad is the 1-minute load at which the node takes no new builds
	// (--max-load); 0 means no limit.
	MaxLoad float64 `json:"max_load,omitempty"`
	// Speed is the node's single-core speed, measured at start, as
	// SHA-256 GB/s: the leader prefers faster members; 0 means unknown.
	Speed          float64 `json:"speed,omitempty"`
	Cores          int     `json:"cores"`
	StoreFreeBytes uint64  `json:"store_free_bytes"`
	DataFreeBytes  uint64  `json:"data_free_bytes"`
	Version        string  `json:"version"`
	// Format and MinFormat are the highest replicated format the node
	// reads and writes, and the lowest it still writes (the node's
	// scheduler.FormatVersion and MinFormat; the mesh does not interpret
	// them). 0 means a node older than these fields: it reads format 1.
	Format        int    `json:"format,omitempty"`
	MinFormat     int    `json:"min_format,omitempty"`
	SubstituteURL string `json:"substitute_url"`
	SigningKey    string `json:"signing_key"`
	// MinFree is the free store space below which the node takes no new
	// builds (--min-free); 0 means no minimum.
	MinFree uint64 `json:"min_free,omitempty"`
}

// Member is one node of the Raft configuration as this node sees it.
type Member struct {
	ID        string      `json:"id"`
	Addresses []string    `json:"addresses"`
	Suffrage  string      `json:"suffrage"` // "voter" or "nonvoter"
	Leader    bool        `json:"leader"`
	LastSeen  time.Time   `json:"last_seen"` // zero if never heard by gossip
	Status    *NodeStatus `json:"status,omitempty"`
	// Conn is how this node is connected to the member: ConnDirect,
	// ConnRelayed, or empty when not connected (and for this node itself).
	Conn string `json:"conn,omitempty"`
	// Reachability is, for this node itself only, what AutoNAT found:
	// public, private or unknown.
	Reachability string `json:"reachability,omitempty"`
}

// Errors returned by Mesh methods.
var (
	// ErrNoLeader is returned when no leader could be reached before the
	// context ended.
	ErrNoLeader = errors.New("no leader reachable")
	// ErrNotImplemented is no longer returned; it remains for callers
	// written against the first sketch of this API.
	ErrNotImplemented = errors.New("not implemented")
	// ErrSecretRejected is returned (wrapped, naming the peer) when a peer
	// completed the TCP connection but not the private-network handshake,
	// which is what a different mesh secret looks like.
	ErrSecretRejected = errors.New("mesh secret rejected")
	// ErrClosed is returned by methods called after Close.
	ErrClosed = errors.New("mesh closed")
	// ErrForeignCluster is returned when this node's Raft history belongs to
	// another cluster and cannot be wiped.
	ErrForeignCluster = errors.New("raft history belongs to another cluster")
	// ErrNotMember is returned (wrapped, naming the peer) by OpenStream for
	// a peer that is not in this node's Raft configuration.
	ErrNotMember = errors.New("peer is not a mesh member")
	// ErrLimitedRelay is returned (wrapped, naming the peer) when the only
	// connection to a peer is a relayed one whose relay limits its
	// circuits (a relay outside the mesh, or an old member): libp2p opens
	// no stream on it.
	ErrLimitedRelay = errors.New("only a limited relayed connection")
	// ErrNoRelayPath is returned (wrapped, naming the peer) when a peer
	// could not be reached directly and no relay could connect to it
	// either, e.g. because it holds no reservation there yet.
	ErrNoRelayPath = errors.New("not reachable directly or through a relay")
)

// FSMError is the error the state machine returned for a command, on
// whichever node it was applied.
type FSMError struct {
	// Msg is the text of the state machine's error.
	Msg string
}

// Error implements error.
func (e *FSMError) Error() string { return "state machine: " + e.Msg }

// Mesh is this node's membership in the farm: libp2p host, discovery, gossip and
// Raft. Create it with New, start it with Start, stop it with Close.
type Mesh struct {
	cfg Config
	log *slog.Logger

	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup // the mesh's own loops
	starting sync.WaitGroup // a Start in progress
	begun    atomic.Bool    // Start was called

	hmu     sync.Mutex
	closing bool
	hwg     sync.WaitGroup // incoming stream handlers

	closeOnce sync.Once
	closeErr  error

	host    host.Host
	started atomic.Bool // host is set; read before host by ID and Addrs
	gater   *gater
	book    *addrBook
	gsp     *gossip
	disc    *discovery
	wan     *wan

	wipeMu     sync.Mutex // one wipe at a time: Start's join and the rejoin of the membership loop
	rmu        sync.RWMutex
	rn         *raftNode
	layer      *streamLayer
	raftClosed bool // Close stopped Raft; no new incarnation may start

	mem     *membership
	pool    streamPool // idle /tbfg/rpc/1 streams
	lead    *leadership
	streams *streamRegistry
	// memberFeed wakes WatchMembers readers when the membership loop sees
	// another configuration or leader.
	memberFeed *changeFeed

	stage atomic.Value // string: the shutdown step running, for a stuck Close
	hooks testHooks
}

// testHooks let tests stop the mesh at chosen points; unset in production.
type testHooks struct {
	// join is called when this node, as leader, starts handling a join.
	join atomic.Pointer[func()]
}

// New validates cfg and prepares a Mesh without starting anything.
func New(cfg Config) (*Mesh, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Mesh{cfg: cfg, log: cfg.Logger, ctx: ctx, cancel: cancel, gater: newGater()}
	m.mem = newMembership()
	m.lead = newLeadership()
	m.memberFeed = newChangeFeed()
	m.streams = newStreamRegistry()
	m.wan = &wan{rsvp: map[peer.ID]reservation{}}
	return m, nil
}

// normalize applies defaults and rejects unusable settings.
func (c *Config) normalize() error {
	if c.DataDir == "" {
		return errors.New("mesh config: no data dir")
	}
	if len(c.Secret) != 32 {
		return fmt.Errorf("mesh config: secret is %d bytes, want 32", len(c.Secret))
	}
	if c.FSM == nil {
		return errors.New("mesh config: no state machine")
	}
	if c.BootstrapExpect < 0 {
		return fmt.Errorf("mesh config: bootstrap-expect %d is negative", c.BootstrapExpect)
	}
	if c.Bootstrap && c.BootstrapExpect > 0 {
		return errors.New("mesh config: bootstrap and bootstrap-expect exclude each other")
	}
	if len(c.ListenAddrs) == 0 {
		c.ListenAddrs = []string{"/ip4/0.0.0.0/tcp/8760"}
	}
	for _, a := range c.ListenAddrs {
		if _, err := ma.NewMultiaddr(a); err != nil {
			return fmt.Errorf("mesh config: listen address %q: %w", a, err)
		}
	}
	for _, p := range c.Peers {
		if _, err := peer.AddrInfoFromString(p); err != nil {
			return fmt.Errorf("mesh config: peer %q (want /ip4/…/tcp/…/p2p/<id>): %w", p, err)
		}
	}
	if _, err := interfaceIPs(c.Interfaces); err != nil {
		return fmt.Errorf("mesh config: %w", err)
	}
	relay, err := ParseRelayMode(string(c.Relay))
	if err != nil {
		return fmt.Errorf("mesh config: %w", err)
	}
	c.Relay = relay
	if c.Timing == (Timing{}) {
		c.Timing = DefaultTiming
	}
	if c.RemoveAfter <= 0 {
		c.RemoveAfter = time.Minute
	}
	if c.GossipInterval <= 0 {
		c.GossipInterval = 3 * time.Second
	}
	if c.LocalStatus == nil {
		c.LocalStatus = func() NodeStatus { return NodeStatus{} }
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Start opens the host, starts discovery and gossip, and starts Raft. A node
// with no Raft state that is not bootstrapping finds members and asks the
// leader to add it, returning once it is a member or ctx ends (JoinStatus
// tells meanwhile what keeps it from joining). Close ends a Start in
// progress. After an error Start has already released what it opened.
func (m *Mesh) Start(ctx context.Context) error {
	if !m.beginStart() {
		return ErrClosed
	}
	// Close cancels m.ctx and then waits for Start: every wait inside
	// Start must end with m.ctx too.
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(m.ctx, cancel)
	err := m.start(ctx)
	stop()
	cancel()
	m.starting.Done()
	if err != nil {
		if m.ctx.Err() != nil && !errors.Is(err, ErrClosed) {
			err = fmt.Errorf("%w: %w", ErrClosed, err)
		}
		m.Close()
		return err
	}
	return nil
}

// beginStart registers a Start with Close; false once Close began.
func (m *Mesh) beginStart() bool {
	m.hmu.Lock()
	defer m.hmu.Unlock()
	if m.closing {
		return false
	}
	m.starting.Add(1)
	m.begun.Store(true)
	return true
}

func (m *Mesh) start(ctx context.Context) error {
	if m.ctx.Err() != nil {
		return ErrClosed
	}
	if err := os.MkdirAll(m.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	key, err := loadIdentity(m.cfg.DataDir)
	if err != nil {
		return err
	}
	if m.host, err = newHost(m.cfg, key, m.gater, m.wan); err != nil {
		return err
	}
	m.started.Store(true)
	m.log = m.log.With("node", shortID(m.host.ID().String()))
	if m.book, err = loadAddrBook(m.cfg.DataDir, m.host.ID()); err != nil {
		return err
	}
	m.book.addTo(m.host.Peerstore())
	if m.gsp, err = m.startGossip(); err != nil {
		return err
	}
	// Handlers go in once everything they use is set.
	m.host.SetStreamHandler(rpcProtocol, m.handleRPC)
	m.host.SetStreamHandler(raftProtocol, m.handleRaft)
	m.streams.attach(m)
	if err := m.startWAN(); err != nil {
		return err
	}
	m.disc = m.startDiscovery()
	return m.startMembership(ctx)
}

// shortID abbreviates a peer ID for log lines.
func shortID(id string) string {
	if len(id) > 8 {
		return id[len(id)-8:]
	}
	return id
}

// track registers an incoming stream handler with Close; false after Close.
func (m *Mesh) track() bool {
	m.hmu.Lock()
	defer m.hmu.Unlock()
	if m.closing {
		return false
	}
	m.hwg.Add(1)
	return true
}

func (m *Mesh) untrack() { m.hwg.Done() }

// goLoop runs f in a goroutine that Close waits for.
func (m *Mesh) goLoop(f func()) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		f()
	}()
}

func (m *Mesh) handleRaft(s network.Stream) {
	m.rmu.RLock()
	l := m.layer
	m.rmu.RUnlock()
	if l == nil || !m.track() {
		s.Reset()
		return
	}
	defer m.untrack()
	l.handle(s)
}

func (m *Mesh) setLayer(l *streamLayer) {
	m.rmu.Lock()
	m.layer = l
	m.rmu.Unlock()
}

// raftNode returns the running Raft, nil while none runs.
func (m *Mesh) raftNode() *raftNode {
	m.rmu.RLock()
	defer m.rmu.RUnlock()
	return m.rn
}

// swapRaft installs rn and returns the previous one. After Close stopped
// Raft it installs nothing: rn is stopped at once and ErrClosed returned,
// so that a wipe racing with Close cannot leave a Raft running.
func (m *Mesh) swapRaft(rn *raftNode) (*raftNode, error) {
	m.rmu.Lock()
	if m.raftClosed && rn != nil {
		m.rmu.Unlock()
		rn.close()
		return nil, ErrClosed
	}
	old := m.rn
	m.rn = rn
	m.rmu.Unlock()
	return old, nil
}

// takeRaftForClose removes the running Raft for good.
func (m *Mesh) takeRaftForClose() *raftNode {
	m.rmu.Lock()
	defer m.rmu.Unlock()
	m.raftClosed = true
	old := m.rn
	m.rn = nil
	return old
}

// closeTimeout bounds Close.
const closeTimeout = 20 * time.Second

// Close stops everything Start started, and ends a Start in progress. It is
// idempotent and bounded in time: if some part has not stopped after
// closeTimeout, Close returns an error naming the step and logs the stacks
// of the mesh's goroutines.
func (m *Mesh) Close() error {
	m.closeOnce.Do(func() {
		done := make(chan error, 1)
		go func() { done <- m.shutdown() }()
		select {
		case m.closeErr = <-done:
		case <-time.After(closeTimeout):
			step, _ := m.stage.Load().(string)
			m.closeErr = fmt.Errorf("close mesh: still stopping (%s) after %v", step, closeTimeout)
			m.log.Error("mesh did not stop in time", "step", step, "goroutines", stuckStacks())
		}
	})
	return m.closeErr
}

// shutdown stops the parts so that nothing waits on a part already gone.
// Every step below is bounded: a stuck step is named by Close.
func (m *Mesh) shutdown() error {
	// Cancelling first ends every loop, every outgoing request, a Start in
	// progress and (by resetting their streams) every incoming request
	// waiting on the network.
	m.stage.Store("cancel")
	m.cancel()
	m.hmu.Lock()
	m.closing = true
	m.hmu.Unlock()
	m.stage.Store("start")
	m.starting.Wait()
	m.stage.Store("discovery")
	if m.disc != nil {
		m.disc.close()
	}
	// Raft is told to stop and its streams are reset before the loops are
	// awaited: a loop may wait for a configuration change to commit, and a
	// Raft goroutine may wait on a peer that no longer answers (a dial or
	// a read with a 10s deadline each); neither must hold Close.
	m.stage.Store("raft signal")
	rn := m.takeRaftForClose()
	var stopped func() error
	if rn != nil {
		stopped = rn.stop()
	}
	m.stage.Store("loops")
	m.wg.Wait()
	m.pool.close()
	var errs []error
	m.stage.Store("raft")
	if stopped != nil {
		if err := stopped(); err != nil && !errors.Is(err, raft.ErrRaftShutdown) {
			errs = append(errs, fmt.Errorf("stop raft: %w", err))
		}
	}
	m.lead.close()
	m.memberFeed.close()
	// Handlers are awaited after Raft: one may wait for a command to
	// commit, which only the shutdown ends. Peer streams were reset by the
	// cancel.
	m.stage.Store("handlers")
	m.streams.closeAll()
	m.hwg.Wait()
	m.stage.Store("gossip")
	if m.gsp != nil {
		m.gsp.close()
	}
	if m.book != nil {
		if err := m.book.save(); err != nil {
			errs = append(errs, err)
		}
	}
	m.stage.Store("relay")
	if err := m.closeWAN(); err != nil {
		errs = append(errs, fmt.Errorf("stop relay service: %w", err))
	}
	m.stage.Store("host")
	if m.host != nil {
		if err := m.host.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close libp2p host: %w", err))
		}
	}
	m.stage.Store("done")
	return errors.Join(errs...)
}

// ID is this node's libp2p peer ID, which is also its Raft server ID.
func (m *Mesh) ID() string {
	if !m.started.Load() {
		return ""
	}
	return m.host.ID().String()
}

// Addrs are the multiaddrs (with /p2p/ID) this node announces.
func (m *Mesh) Addrs() []string {
	if !m.started.Load() {
		return nil
	}
	var out []string
	for _, a := range m.host.Addrs() {
		out = append(out, a.String()+"/p2p/"+m.ID())
	}
	return out
}

// Leader is the current leader's peer ID, empty if none is known.
func (m *Mesh) Leader() string {
	rn := m.raftNode()
	if rn == nil {
		return ""
	}
	_, id := rn.r.LeaderWithID()
	return string(id)
}

// Members lists the Raft configuration merged with the gossip view.
func (m *Mesh) Members() []Member {
	rn := m.raftNode()
	if rn == nil {
		return nil
	}
	leader := m.Leader()
	var out []Member
	for _, s := range rn.configuration().Servers {
		id := string(s.ID)
		mb := Member{ID: id, Suffrage: "nonvoter", Leader: id == leader}
		if s.Suffrage == raft.Voter {
			mb.Suffrage = "voter"
		}
		mb.Addresses = m.addrsOf(id)
		if id == m.ID() {
			mb.Reachability = m.Reachability()
		} else {
			mb.Conn = m.ConnKind(id)
		}
		if e, ok := m.gsp.view.get(id); ok {
			mb.LastSeen = e.seen
			st := e.status
			mb.Status = &st
		}
		out = append(out, mb)
	}
	return out
}

// addrsOf lists the known multiaddrs of a node, its own when id is self.
func (m *Mesh) addrsOf(id string) []string {
	if id == m.ID() {
		return m.Addrs()
	}
	return m.book.get(id)
}

// Apply commits cmd through the leader, forwarding it if this node is not the
// leader, and retries across a leader change until ctx ends. It returns the
// FSM's response. Under a leader change a command may be applied twice (the
// old leader may have committed it before failing to answer), so commands
// should be idempotent. A state-machine error is an *FSMError.
func (m *Mesh) Apply(ctx context.Context, cmd []byte) ([]byte, error) {
	resp, _, err := m.ApplyIndexed(ctx, cmd)
	return resp, err
}

// ApplyIndexed is Apply that also returns the Raft index that committed cmd.
// This node's own replica may not have applied that index yet when it
// returns: a read that must see the command waits for the index first (the
// FSM's WaitIndex), which is what makes "submit on a follower, then read
// there" see its own write.
func (m *Mesh) ApplyIndexed(ctx context.Context, cmd []byte) ([]byte, uint64, error) {
	var last error
	for wait := m.retryBase(); ; wait = min(2*wait, time.Second) {
		resp, index, err := m.applyOnce(ctx, cmd)
		var fe *FSMError
		if err == nil || errors.As(err, &fe) || errors.Is(err, ErrClosed) {
			return resp, index, err
		}
		last = err
		if !sleepCtx(ctx, wait) {
			return nil, 0, fmt.Errorf("%w: %w (last attempt: %w)", ErrNoLeader, ctx.Err(), last)
		}
	}
}

func (m *Mesh) retryBase() time.Duration {
	return max(m.cfg.Timing.HeartbeatTimeout/10, 10*time.Millisecond)
}

// applyOnce makes one attempt at committing cmd.
func (m *Mesh) applyOnce(ctx context.Context, cmd []byte) ([]byte, uint64, error) {
	if m.ctx.Err() != nil {
		return nil, 0, ErrClosed
	}
	leader := m.Leader()
	switch leader {
	case "":
		return nil, 0, errors.New("no leader elected")
	case m.ID():
		return responseResult(m.applyLocal(cmd), nil)
	}
	id, err := peer.Decode(leader)
	if err != nil {
		return nil, 0, err
	}
	resp, err := m.roundTrip(ctx, id, &rpcRequest{Kind: kindApply, Cmd: cmd})
	return responseResult(resp, err)
}

// responseResult turns an apply response into Apply's result and index.
func responseResult(resp *rpcResponse, err error) ([]byte, uint64, error) {
	switch {
	case err != nil:
		return nil, 0, err
	case resp.Code == codeFSM:
		return nil, resp.Index, &FSMError{Msg: resp.Err}
	case resp.Code != "":
		return nil, 0, &rpcError{Peer: resp.Leader, Code: resp.Code, Msg: resp.Err}
	}
	return resp.Resp, resp.Index, nil
}

// applyLocal commits cmd on this node, which must lead.
func (m *Mesh) applyLocal(cmd []byte) *rpcResponse {
	rn := m.raftNode()
	if rn == nil {
		return &rpcResponse{Code: codeNoLeader, Err: "raft not running"}
	}
	return applyOn(rn, cmd)
}

// applyOn commits cmd through rn, which must lead.
func applyOn(rn *raftNode, cmd []byte) *rpcResponse {
	f := rn.r.Apply(cmd, rpcTimeout)
	if err := rn.await(f); err != nil {
		code := codeFailed
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrLeadershipTransferInProgress) {
			code = codeNotLeader
		}
		return &rpcResponse{Code: code, Err: err.Error()}
	}
	rn.nudge()
	idx := f.Index()
	switch r := f.Response().(type) {
	case nil:
		return &rpcResponse{Index: idx}
	case []byte:
		return &rpcResponse{Resp: r, Index: idx}
	case error:
		return &rpcResponse{Code: codeFSM, Err: r.Error(), Index: idx}
	default:
		return &rpcResponse{Code: codeFSM, Err: fmt.Sprintf("unsupported response type %T", r), Index: idx}
	}
}

// sleepCtx waits d or until ctx ends; false if ctx ended.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// finite reports whether f is neither NaN nor infinite.
func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
