package mesh

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/tbfg/tbfg-node/internal/raftstore"

	"github.com/tbfg/tbfg-node/internal/raftlog"
)

// Raft timing profiles for Config.Timing.
var (
	// DefaultTiming is hashicorp/raft's default, for meshes that span
	// networks (VPN, WAN).
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
	store *raftstore.Store
	layer *streamLayer
	// hadState tells whether the stores held Raft history when opened.
	hadState bool
}

func (m *Mesh) raftDir() string { return filepath.Join(m.cfg.DataDir, "raft") }

// openRaft opens the stores in DataDir/raft and starts Raft on them.
func (m *Mesh) openRaft() (*raftNode, error) {
	dir := m.raftDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create raft dir: %w", err)
	}
	store, err := raftstore.Open(filepath.Join(dir, "raft.db"))
	if err != nil {
		return nil, fmt.Errorf("open raft log %s: %w", dir, err)
	}
	rn, err := m.startRaft(store)
	if err != nil {
		store.Close()
		return nil, err
	}
	return rn, nil
}

func (m *Mesh) startRaft(store *raftstore.Store) (*raftNode, error) {
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
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: layer, MaxPool: 3, Timeout: 10 * time.Second, Logger: hlog,
	})
	m.setLayer(layer)
	r, err := raft.NewRaft(m.raftConfig(hlog), m.cfg.FSM, store, store, snaps, trans)
	if err != nil {
		trans.Close()
		return nil, fmt.Errorf("start raft: %w", err)
	}
	return &raftNode{r: r, store: store, layer: layer, hadState: has}, nil
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
	c.Logger = hlog
	return c
}

// close stops Raft and closes its stores.
func (rn *raftNode) close() error {
	err := rn.r.Shutdown().Error()
	rn.layer.Close()
	if cerr := rn.store.Close(); err == nil {
		err = cerr
	}
	return err
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
// share.
func (m *Mesh) wipeRaft() error {
	old := m.swapRaft(nil)
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
	m.swapRaft(rn)
	return nil
}

// configuration returns the latest Raft configuration, or an empty one when
// Raft is not running.
func (rn *raftNode) configuration() raft.Configuration {
	f := rn.r.GetConfiguration()
	if f.Error() != nil {
		return raft.Configuration{}
	}
	return f.Configuration()
}
