package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tbfg/tbfg-node/internal/hostinfo"
	"github.com/tbfg/tbfg-node/internal/loops"
	"github.com/tbfg/tbfg-node/mesh"
	"github.com/tbfg/tbfg-node/node/adminapi"
	"github.com/tbfg/tbfg-node/node/agent"
	"github.com/tbfg/tbfg-node/node/buildlog"
	"github.com/tbfg/tbfg-node/node/datadir"
	"github.com/tbfg/tbfg-node/node/executor"
	"github.com/tbfg/tbfg-node/node/gc"
	"github.com/tbfg/tbfg-node/node/membership"
	"github.com/tbfg/tbfg-node/node/meshsource"
	"github.com/tbfg/tbfg-node/node/metrics"
	"github.com/tbfg/tbfg-node/node/replicate"
	"github.com/tbfg/tbfg-node/node/web"
	"github.com/tbfg/tbfg-node/scheduler"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/local"
)

// shutdownTimeout bounds how long the admin API waits for requests in flight
// when the node stops.
const shutdownTimeout = 5 * time.Second

// Node is one running tbfg-node. Build it with New, run it with Run.
type Node struct {
	cfg           Config
	log           *slog.Logger
	speed         float64 // hostinfo.Speed, measured once by New and gossiped
	secret        []byte
	secretStored  bool // the data dir already holds secret
	fsm           *scheduler.FSM
	mesh          *mesh.Mesh
	admin         *adminapi.Server
	members       *membership.Membership               // made by Run once the mesh runs
	keys          *datadir.Keys                        // loaded by Run, before anything reads them
	signer        *meshsource.Signer                   // signs the narinfos of items this node holds; made with keys
	store         *local.Store                         // opened by Run, closed by stop
	logs          *buildlog.Dir                        // opened by Run: the build logs
	exec          executor.Executor                    // made by Run over store
	source        *meshsource.Source                   // made by Run once the mesh runs
	loops         *loops.Group                         // the background loops, made by Run
	agent         atomic.Pointer[agent.Agent]          // set once the agent runs
	replicator    atomic.Pointer[replicate.Replicator] // set once the replicator is made
	collector     atomic.Pointer[gc.Collector]         // set once the store collector runs
	substituteURL atomic.Value                         // string, gossiped
	metrics       *metrics.Metrics                     // the node's registry, made by New
	web           *web.Server                          // the status server, nil without --http-listen
	httpAddr      atomic.Value                         // string: the status server's listen address
	// outputNAR reads outputs the executor keeps outside store (nix).
	outputNAR func(context.Context, store.Path) (io.ReadCloser, error)

	ran       atomic.Bool
	state     atomic.Value // string: adminapi.StateStarting, adminapi.StateRunning, adminapi.StateStopping
	ready     chan struct{}
	left      chan struct{}
	leaveOnce sync.Once
	fatal     chan error // why the node must stop (ErrMeshTooOld); buffered, first one wins
}

// New validates cfg and builds every component of the node without starting
// any: the data dir and its secret, the build queue's state machine, the
// mesh and the admin API. Tests build nodes through New too.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	n := &Node{cfg: cfg, log: cfg.Logger, ready: make(chan struct{}), left: make(chan struct{}), fatal: make(chan error, 1)}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	n.fsm = scheduler.NewFSM(n.log.With("component", "scheduler"))
	n.speed = hostinfo.Speed()
	n.state.Store(adminapi.StateStarting)
	var err error
	if n.secret, n.secretStored, err = resolveSecret(cfg); err != nil {
		return nil, err
	}
	n.mesh, err = mesh.New(n.meshConfig())
	if err != nil {
		return nil, fmt.Errorf("mesh: %w", err)
	}
	n.admin = adminapi.NewServer(n, n.log.With("component", "admin"))
	n.metrics = n.newMetrics()
	if n.web, err = n.newStatusServer(); err != nil {
		return nil, err
	}
	return n, nil
}

// meshConfig translates the node's config for the mesh.
func (n *Node) meshConfig() mesh.Config {
	c := n.cfg
	return mesh.Config{
		DataDir:         c.DataDir,
		Secret:          n.secret,
		ListenAddrs:     c.Listen,
		Interfaces:      c.Interfaces,
		MDNS:            c.MDNS,
		Relay:           mesh.RelayMode(c.Relay),
		PublicRanges:    publicRanges(c.PublicRanges),
		Peers:           c.Peers,
		Voter:           c.Voter,
		Bootstrap:       c.Mode == ModeInit,
		BootstrapExpect: c.BootstrapExpect,
		Timing:          timings()[c.RaftProfile],
		RemoveAfter:     c.RemoveAfter,
		GossipInterval:  c.GossipInterval,
		FSM:             n.fsm,
		LocalStatus:     n.localStatus,
		Logger:          n.log.With("component", "mesh"),
	}
}

// Run starts the components in order and blocks until ctx ends or the node
// leaves the mesh, then stops them in reverse order. It returns nil after a
// requested stop.
func (n *Node) Run(ctx context.Context) error {
	if n.ran.Swap(true) {
		return ErrRunTwice
	}
	n.loops = loops.New(ctx, n.log)
	// The lock comes first and goes last: a second process on this data dir
	// would open the same Raft log.
	unlock, err := datadir.Lock(n.cfg.DataDir)
	if err != nil {
		return err
	}
	defer unlock()
	if err := n.openLocal(); err != nil {
		return err
	}
	// The status server's port is taken first of all listeners: a busy
	// port fails the start before anything else is set up.
	httpLn, err := n.listenHTTP()
	if err != nil {
		return errors.Join(err, n.store.Close())
	}
	// The admin API starts before the mesh so that status answers "starting"
	// while the node looks for its mesh; the other calls wait for running.
	if err := n.admin.Listen(n.socket()); err != nil {
		return errors.Join(err, closeListener(httpLn), n.store.Close())
	}
	// The status server too, so that /readyz answers "not ready" with its
	// reason while the node joins; its loops stop after every later one.
	n.startStatusServer(httpLn)
	n.log.Info("starting", "data_dir", n.cfg.DataDir, "mode", n.cfg.Mode.String())
	if err := n.startMesh(ctx); err != nil {
		return n.failStart(ctx, err)
	}
	// The secret is stored only now that the mesh runs (for init: Raft is
	// bootstrapped). A start that failed earlier (no executor, a busy port)
	// leaves none, so init can simply be run again: with a stored secret
	// init refuses, and run would wait forever for a leader that a mesh
	// never bootstrapped cannot elect.
	if !n.secretStored {
		if err := datadir.WriteSecret(n.cfg.DataDir, n.secret); err != nil {
			return errors.Join(err, n.stop())
		}
	}
	if err := n.startServices(ctx); err != nil {
		return errors.Join(err, n.stop())
	}
	n.state.Store(adminapi.StateRunning)
	close(n.ready)
	n.log.Info("running", "id", n.mesh.ID(), "addrs", n.mesh.Addrs())
	select {
	case <-ctx.Done():
	case <-n.left:
	case err := <-n.fatal:
		return errors.Join(err, n.stop())
	case <-n.fsm.Halted():
		return errors.Join(n.tooNew(), n.stop())
	}
	return n.stop()
}

// startMesh starts the mesh, giving up if the state machine halts on an
// entry or snapshot newer than this binary reads (say, while it replays its
// log): the node cannot follow the mesh, and says which version it needs.
func (n *Node) startMesh(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-n.fsm.Halted():
			cancel()
		case <-ctx.Done():
		}
	}()
	err := n.mesh.Start(ctx)
	if n.fsm.Err() != nil {
		return n.tooNew()
	}
	return err
}

// stopIncompatible makes Run stop the node with err: a member reads only
// formats older than this binary writes.
func (n *Node) stopIncompatible(err error) {
	select {
	case n.fatal <- err:
	default:
	}
}

// tooNew is the error of a node whose state machine halted: what it could
// not read, and which members run a version that can.
func (n *Node) tooNew() error {
	err := n.fsm.Err()
	var tn *scheduler.TooNewError
	if errors.As(err, &tn) {
		if hint := membership.UpgradeHint(n.mesh.Members(), max(tn.Format, scheduler.FormatVersion+1)); hint != "" {
			err = fmt.Errorf("%w (%s)", err, hint)
		}
	}
	return err
}

// startServices starts what needs the running mesh, in this order:
//   - the mesh source and its peer streams: it names this node by its peer
//     ID, and the substitute server and the agent read through it;
//   - the substitute server: its gossiped URL uses the mesh's announced
//     addresses, and it should answer before the agent publishes outputs;
//   - membership, which registers this node in the build queue (and, on
//     the leader, allocates builds): its registration tells the agent that
//     the replica has caught up;
//   - the agent, which waits for that registration before it looks for
//     orphaned builds;
//   - the replicator: it also waits for the registration, fetches
//     through the mesh source, and copies what the agent publishes;
//   - the store collector last: it also waits for the registration, and
//     commits what it gives up through the mesh before removing it.
func (n *Node) startServices(ctx context.Context) error {
	if err := n.startSource(); err != nil {
		return err
	}
	if err := n.startSubstitutes(ctx); err != nil {
		return err
	}
	n.members = membership.New(membership.Config{
		Mesh: n.mesh, FSM: n.fsm, Registration: n.registration(),
		GossipInterval: n.cfg.GossipInterval, RemoveAfter: n.cfg.RemoveAfter,
		History: n.cfg.History, CompactEvery: n.cfg.compactEvery, Now: n.cfg.now,
		Version: n.cfg.Version, Incompatible: n.stopIncompatible,
		Logger: n.log.With("component", "membership"),
	})
	n.loops.Go("membership", nil, n.members.Run)
	n.startLogRetention()
	if n.cfg.withoutAgent {
		return nil
	}
	if err := n.startAgent(ctx); err != nil {
		return err
	}
	if err := n.startReplicator(ctx); err != nil {
		return err
	}
	return n.startCollector()
}

// failStart stops what Run started after the mesh failed to start. A start
// cut short by ctx is a requested stop, but what kept the node from joining
// (say, a wrong secret) is still worth telling; a failed init forgets its
// secret so that init can be run again.
func (n *Node) failStart(ctx context.Context, err error) error {
	stopErr := n.stop()
	if ctx.Err() != nil {
		n.log.Warn("stopped before becoming a member", "err", err)
		return stopErr
	}
	if n.cfg.Mode == ModeInit {
		_ = os.Remove(filepath.Join(n.cfg.DataDir, datadir.SecretFile))
	}
	return errors.Join(fmt.Errorf("start mesh: %w", err), stopErr)
}

// stop shuts the components down in the reverse of their start order.
func (n *Node) stop() error {
	n.state.Store(adminapi.StateStopping)
	n.log.Info("stopping")
	var errs []error
	// The admin API first: its handlers call into the mesh, which must not
	// close under them. Bounded, so a stuck client cannot hold the shutdown.
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	errs = append(errs, n.admin.Shutdown(ctx))
	if err := os.Remove(n.socket()); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	// Then the replicator, the agent, membership and the substitute server
	// (its advertisement first, its cache last), the reverse of
	// startServices: the replicator, the agent and membership commit through
	// the mesh, and the replicator, the agent and the server read NARs from
	// the members through it. The replicator may simply drop a copy in
	// progress (what it fetched stays valid and is recorded by the next
	// run), while the agent's final reports must get through. The status
	// server stops last of the loops, still before the mesh it reads: its
	// pages and event streams end, and requests in flight get 5 seconds.
	errs = append(errs, n.loops.Stop())
	// Then the mesh: closing Raft ends the FSM's Apply calls, and closing
	// gossip ends the calls to localStatus.
	errs = append(errs, n.mesh.Close())
	// The store last: the admin API's submissions write into it.
	if n.store != nil {
		errs = append(errs, n.store.Close())
	}
	return errors.Join(errs...)
}

// closeListener closes ln if there is one.
func closeListener(ln net.Listener) error {
	if ln == nil {
		return nil
	}
	return ln.Close()
}

func (n *Node) socket() string { return filepath.Join(n.cfg.DataDir, datadir.AdminSocket) }

func (n *Node) storeRealDir() string { return filepath.Join(n.cfg.DataDir, datadir.StoreSubdir) }

// openLocal opens the build log directory, loads or creates the signing
// keys, opens the built-in store and makes the executor over it.
// The caller holds the data dir lock: opening the log directory finishes
// the live logs of an earlier run.
func (n *Node) openLocal() error {
	var err error
	if n.logs, err = buildlog.Open(n.logDir()); err != nil {
		return err
	}
	host, err := os.Hostname()
	if err != nil {
		return fmt.Errorf("host name for the signing key: %w", err)
	}
	if n.keys, err = datadir.LoadOrCreateKeys(n.cfg.DataDir, host); err != nil {
		return err
	}
	n.signer = &meshsource.Signer{Host: host, Guix: n.keys.Guix, Nix: n.keys.Nix}
	if n.store, err = local.Open(n.storeRealDir(), store.Dir(n.cfg.StoreDir)); err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	if err := n.newExecutor(); err != nil {
		return errors.Join(err, n.store.Close())
	}
	return nil
}

// FSM is the node's copy of the replicated build queue, for reading.
func (n *Node) FSM() *scheduler.FSM { return n.fsm }

// Secret is the mesh secret in its text form, as join --secret takes it.
func (n *Node) Secret() string { return datadir.FormatSecret(n.secret) }

// DataDir is the node's data directory.
func (n *Node) DataDir() string { return n.cfg.DataDir }

// Ready is closed once the node is a member of its mesh.
func (n *Node) Ready() <-chan struct{} { return n.ready }

// ID is the node's peer ID; valid once Ready is closed.
func (n *Node) ID() string { return n.mesh.ID() }

// Addrs are the multiaddrs the node announces; valid once Ready is closed.
func (n *Node) Addrs() []string { return n.mesh.Addrs() }

// Apply commits cmd to the replicated state through the leader and returns
// the state machine's response.
func (n *Node) Apply(ctx context.Context, cmd []byte) ([]byte, error) {
	if !n.running() {
		return nil, n.notReady()
	}
	return n.applier().Apply(ctx, cmd)
}

// applier commits through the mesh, refusing commands of a format some
// member cannot read yet (scheduler.FormatGate).
func (n *Node) applier() scheduler.Applier {
	return scheduler.FormatGate{Applier: n.mesh, MeshFormat: n.meshFormat}
}

// meshFormat is the highest replicated format every member reads.
func (n *Node) meshFormat() int {
	f, _ := membership.MeshFormat(n.mesh.Members())
	return f
}

// takesNext says whether the agent may take a dependent of a build it has
// just built into that build's slot: once every member reads the format of
// such a success, and while the node's own view gives no reason to refuse
// new builds (disk below --min-free, load at --max-load), as the leader
// judges a node.
func (n *Node) takesNext() bool {
	if n.meshFormat() < scheduler.TypeFormat(scheduler.TypeSucceededTakeNext) {
		return false
	}
	return membership.View(n.mesh.ID(), n.localStatus()).NoBuildsReason(scheduler.PlanOptions{}) == ""
}

func (n *Node) running() bool { return n.state.Load() == adminapi.StateRunning }

func (n *Node) notReady() error {
	return fmt.Errorf("%w: node is %s", adminapi.ErrUnavailable, n.state.Load())
}

// registration describes this node in the build queue: its keys, loaded by
// then, and what it builds.
func (n *Node) registration() scheduler.NodeJoined {
	return scheduler.NodeJoined{Key: n.keys.GuixPublic(), NixKey: n.keys.Nix.Public().String(),
		Systems: n.cfg.Systems, Features: n.cfg.Features, MaxBuilds: n.cfg.MaxBuilds}
}

// String names the mode as its subcommand.
func (m Mode) String() string {
	switch m {
	case ModeInit:
		return "init"
	case ModeJoin:
		return "join"
	default:
		return "run"
	}
}

// publicRanges parses --public-range values, which validate has checked.
func publicRanges(rs []string) []netip.Prefix {
	var out []netip.Prefix
	for _, r := range rs {
		if p, err := mesh.ParsePublicRange(r); err == nil {
			out = append(out, p)
		}
	}
	return out
}
