package mesh

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// blockingFSM holds every Apply until release closes.
type blockingFSM struct{ release chan struct{} }

func (f blockingFSM) Apply(*raft.Log) any                 { <-f.release; return nil }
func (f blockingFSM) Snapshot() (raft.FSMSnapshot, error) { return nil, errors.New("no snapshots") }
func (f blockingFSM) Restore(io.ReadCloser) error         { return nil }

// inmemLeader starts a single-node in-memory Raft on fsm and waits until it
// leads.
func inmemLeader(t *testing.T, fsm raft.FSM) *raft.Raft {
	cfg := raft.DefaultConfig()
	cfg.LocalID = "a"
	cfg.HeartbeatTimeout = 50 * time.Millisecond
	cfg.ElectionTimeout = 50 * time.Millisecond
	cfg.LeaderLeaseTimeout = 50 * time.Millisecond
	cfg.Logger = hclog.NewNullLogger()
	store := raft.NewInmemStore()
	_, trans := raft.NewInmemTransport("a")
	r, err := raft.NewRaft(cfg, fsm, store, store, raft.NewInmemSnapshotStore(), trans)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Shutdown().Error() })
	boot := raft.Configuration{Servers: []raft.Server{{ID: "a", Address: trans.LocalAddr()}}}
	if err := r.BootstrapCluster(boot).Error(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "leader", func() error {
		if r.State() != raft.Leader {
			return errors.New(r.State().String())
		}
		return nil
	})
	return r
}

// TestAwaitEndsWhenRaftStops checks that await reaches the futures this
// version of hashicorp/raft returns, and that a wait on a command the
// state machine has not answered ends once the incarnation stops.
func TestAwaitEndsWhenRaftStops(t *testing.T) {
	fsm := blockingFSM{release: make(chan struct{})}
	r := inmemLeader(t, fsm)
	defer close(fsm.release)
	rn := &raftNode{r: r, stopping: make(chan struct{})}
	f := r.Apply([]byte("y"), time.Second)
	done := make(chan error, 1)
	go func() { done <- rn.await(f) }()
	close(rn.stopping)
	select {
	case err := <-done:
		if !errors.Is(err, raft.ErrRaftShutdown) {
			t.Fatalf("await = %v, want %v", err, raft.ErrRaftShutdown)
		}
	case <-time.After(scale(10 * time.Second)):
		t.Fatal("await did not end after stopping closed")
	}
	// One of each future type: the membership calls all return a
	// configuration change future, and a non-voter keeps the quorum.
	futures := map[string]raft.Future{
		"apply":      r.Apply([]byte("x"), scale(10*time.Second)),
		"nonvoter":   r.AddNonvoter("e", "e", 0, scale(10*time.Second)),
		"bootstrap":  r.BootstrapCluster(raft.Configuration{}),
		"get config": r.GetConfiguration(),
	}
	for name, f := range futures {
		t.Run(name, func(t *testing.T) {
			if !bindShutdown(f, make(chan struct{})) {
				t.Fatalf("%T has no settable ShutdownCh", f)
			}
		})
	}
}
