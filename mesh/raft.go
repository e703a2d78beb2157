package mesh

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/tbfg/tbfg-node/internal/raftdb"
	"github.com/tbfg/tbfg-node/internal/raftlog"
)

// Raft timing profiles for Config.Timing; DESIGN.md ("Timing profiles")
// has the round trips each tolerates, as measured.
var (
	// DefaultTiming is hashicorp/raft's default, for a LAN under load or
	// members up to about 100 ms apart (a VPN).
	DefaultTiming = Timing{
		HeartbeatTimeout:   time.Second,
		ElectionTimeout:    time.Second,
		LeaderLeaseTimeout: 500 * time.Millisecond,
		CommitTimeout:      50 * time.Millisecond,
	}
	// LANTiming fails over faster on a quiet local network.
	LANTiming = Timing{
		HeartbeatTimeout:   400 * time.Millisecond,
		ElectionTimeout:    400 * time.Millisecond,
		LeaderLeaseTimeout: 250 * time.Millisecond,
		CommitTimeout:      20 * time.Millisecond,
	}
	// WANTiming is for members across the internet, 50–100 ms apart and
	// perhaps reached through a relay (two such links): twice the default's
	// timeouts, so that a late heartbeat over a slow path does not start an
	// election, and a leader lease of 1 s, which holds up to round trips
	// of about 800 ms; failover takes about twice the default's.
	WANTiming = Timing{
		HeartbeatTimeout:   2 * time.Second,
		ElectionTimeout:    2 * time.Second,
		LeaderLeaseTimeout: time.Second,
		CommitTimeout:      50 * time.Millisecond,
	}
	// TestTiming is for in-process tests on loopback.
	TestTiming = Timing{
		HeartbeatTimeout:   500 * time.Millisecond,
		ElectionTimeout:    500 * time.Millisecond,
		LeaderLeaseTimeout: 500 * time.Millisecond,
		CommitTimeout:      5 * time.Millisecond,
	}
)

// clusterIDKey is where the stable store keeps the cluster ID: the identity
// of the Raft history this node holds, set by the node that bootstrapped it
// and handed to every joiner.
var clusterIDKey = []byte("tbfg_cluster_id")

// raftNode is one incarnation of Raft on this node; a wipe replaces it.
type raftNode struct {
	r     *raft.Raft
	store *raftboltdb.BoltStore
	layer *streamLayer
	// hadState tells whether the stores held Raft history when opened.
	hadState bool
	// notify is Raft's NotifyCh; watch forwards it to the mesh's
	// leadership until quit closes, then closes watched.
	notify  chan bool
	quit    chan struct{}
	watched chan struct{}
	// nudges asks nudgeLoop for a barrier after a commit; nudged closes
	// when nudgeLoop returns, after quit closes.
	nudges chan struct{}
	nudged chan struct{}
	// stopping closes when Raft is told to stop; it ends every wait on
	// one of this incarnation's futures (see await).
	stopping chan struct{}

	once     sync.Once
	shutdown raft.Future
	waitOnce sync.Once
	err      error
}

func (m *Mesh) raftDir() string { return filepath.Join(m.cfg.DataDir, "raft") }

// raftDB is the file of Raft's log and stable store.
func (m *Mesh) raftDB() string { return filepath.Join(m.raftDir(), "raft.db") }

// openRaft opens the stores in DataDir/raft and starts Raft on them.
func (m *Mesh) openRaft() (*raftNode, error) {
	dir := m.raftDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create raft dir: %w", err)
	}
	store, err := raftdb.Open(m.raftDB(), m.log)
	if err != nil {
		return nil, fmt.Errorf("open raft log: %w", err)
	}
	rn, err := m.startRaft(store)
	if err != nil {
		store.Close()
		return nil, err
	}
	return rn, nil
}

func (m *Mesh) startRaft(store *raftboltdb.BoltStore) (*raftNode, error) {
	hlog := raftlog.New(m.log, "raft")
	snaps, err := raft.NewFileSnapshotStoreWithLogger(m.raftDir(), 2, hlog)
	if err != nil {
		return nil, fmt.Errorf("open raft snapshots: %w", err)
	}
	has, err := raft.HasExistingState(store, store, snaps)
	if err != nil {
		return nil, fmt.Errorf("read raft state: %w", err)
	}
	layer := newStreamLayer(m.host)
	trans := noPipeline{raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: layer, MaxPool: 3, Timeout: 10 * time.Second, Logger: hlog,
	})}
	m.setLayer(layer)
	rn := &raftNode{store: store, layer: layer, hadState: has,
		notify: make(chan bool, 1), quit: make(chan struct{}), watched: make(chan struct{}),
		stopping: make(chan struct{}), nudges: make(chan struct{}, 1), nudged: make(chan struct{})}
	cfg := m.raftConfig(hlog)
	cfg.NotifyCh = rn.notify
	r, err := raft.NewRaft(cfg, m.cfg.FSM, store, store, snaps, trans)
	if err != nil {
		trans.Close()
		return nil, fmt.Errorf("start raft: %w", err)
	}
	rn.r = r
	go rn.watch(m.lead)
	go rn.nudgeLoop()
	return rn, nil
}

// watch forwards Raft's leadership notifications until the node stops.
// Raft blocks on NotifyCh until it is read (or it shuts down), so this
// goroutine runs for as long as Raft does.
func (rn *raftNode) watch(l *leadership) {
	defer close(rn.watched)
	for {
		select {
		case v := <-rn.notify:
			l.set(rn, v)
		case <-rn.quit:
			l.set(rn, false)
			return
		}
	}
}

func (m *Mesh) raftConfig(hlog hclog.Logger) *raft.Config {
	c := raft.DefaultConfig()
	c.LocalID = raft.ServerID(m.host.ID().String())
	c.HeartbeatTimeout = m.cfg.Timing.HeartbeatTimeout
	c.ElectionTimeout = m.cfg.Timing.ElectionTimeout
	c.LeaderLeaseTimeout = m.cfg.Timing.LeaderLeaseTimeout
	c.CommitTimeout = m.cfg.Timing.CommitTimeout
	// A removed node keeps running so that it can ask to be added again
	// when it is heard from after a partition.
	c.ShutdownOnRemove = false
	c.BatchApplyCh = m.cfg.batchApplyCh
	c.Logger = hlog
	return c
}

// noPipeline is Raft's network transport without AppendEntries
// pipelining. hashicorp/raft v1.7.2 can deadlock a pipeline at shutdown:
// once the replication's consumer of finished requests has stopped, the
// pipeline's decoder blocks handing one over and the sender blocks on the
// full queue of requests in flight, and only closing the pipeline, which
// the blocked sender would do on its way out, frees them; Raft's Shutdown
// then never returns (seen in a mesh test: Close gave up after 30 s).
// Without pipelining each follower gets one AppendEntries at a time, with
// up to MaxAppendEntries entries: the same latency for one commit, and
// batches for many.
type noPipeline struct{ *raft.NetworkTransport }

// AppendEntriesPipeline implements raft.Transport: never.
func (noPipeline) AppendEntriesPipeline(raft.ServerID, raft.ServerAddress) (raft.AppendPipeline, error) {
	return nil, raft.ErrPipelineReplicationNotSupported
}

// close stops Raft and closes its stores.
func (rn *raftNode) close() error { return rn.stop()() }

// stop tells Raft to stop and unblocks every Raft goroutine waiting on the
// network: pending dials are cancelled and open Raft streams reset, so that
// a peer that stopped answering cannot hold the shutdown for the
// transport's 10s deadlines. The returned function waits until Raft has
// stopped and closes the stores.
func (rn *raftNode) stop() func() error {
	rn.once.Do(func() {
		rn.shutdown = rn.r.Shutdown()
		close(rn.stopping)
	})
	rn.layer.abort()
	return rn.wait
}

// wait waits until Raft stopped, then closes the stores; once.
func (rn *raftNode) wait() error {
	rn.waitOnce.Do(func() {
		err := rn.shutdown.Error()
		close(rn.quit)
		<-rn.watched
		<-rn.nudged
		if cerr := rn.store.Close(); err == nil {
			err = cerr
		}
		rn.err = err
	})
	return rn.err
}

// clusterID returns the cluster ID recorded in the stable store, "" if none.
func (rn *raftNode) clusterID() string {
	v, err := rn.store.Get(clusterIDKey)
	if err != nil {
		return ""
	}
	return string(v)
}

func (rn *raftNode) setClusterID(id string) error {
	if err := rn.store.Set(clusterIDKey, []byte(id)); err != nil {
		return fmt.Errorf("record cluster id: %w", err)
	}
	return nil
}

// newClusterID returns a random cluster ID for a cluster bootstrapped by init.
func newClusterID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// wipeRaft stops Raft, deletes DataDir/raft and starts Raft again on empty
// stores, so that this node can join a cluster whose history it does not
// share. The caller holds wipeMu.
func (m *Mesh) wipeRaft() error {
	old, err := m.swapRaft(nil)
	if err != nil {
		return err
	}
	if old != nil {
		if err := old.close(); err != nil && !errors.Is(err, raft.ErrRaftShutdown) {
			m.log.Warn("stop raft before wipe", "error", err)
		}
	}
	m.log.Warn("wiping raft state held from another cluster", "dir", m.raftDir())
	if err := os.RemoveAll(m.raftDir()); err != nil {
		return fmt.Errorf("wipe raft state: %w", err)
	}
	rn, err := m.openRaft()
	if err != nil {
		return err
	}
	// Nothing else installs a Raft while wipeMu is held; should that
	// change, the one replaced here must still be stopped.
	old, err = m.swapRaft(rn)
	if old != nil {
		old.close()
	}
	return err
}

// configuration returns the latest Raft configuration, or an empty one when
// Raft is not running.
func (rn *raftNode) configuration() raft.Configuration {
	f := rn.r.GetConfiguration()
	if rn.await(f) != nil {
		return raft.Configuration{}
	}
	return f.Configuration()
}
