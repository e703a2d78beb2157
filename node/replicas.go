package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tbfg/tbfg-node/node/replicate"
)

// replicateTick wakes the replicator when no state change does, so that
// paths whose back-off ended are tried again.
const replicateTick = replicate.BackoffBase

// startReplicator runs the replicator, which copies store items from their
// holders until --replicas members hold each, through the mesh source and
// committing through the mesh like the agent. Like the agent it waits until
// this node is registered in its replica: before that the node is no
// candidate for copies, and its replica may still be catching up.
func (n *Node) startReplicator(ctx context.Context) error {
	tick := time.NewTicker(replicateTick)
	r, err := replicate.New(replicate.Config{
		Node: n.mesh.ID(), FSM: n.fsm, Applier: n.mesh, Fetcher: n.source,
		Copies: n.cfg.Replicas, Tick: tick.C, Logger: n.log.With("component", "replicate"),
	})
	if err != nil {
		tick.Stop()
		return fmt.Errorf("replicator: %w", err)
	}
	ctx, n.svc.stopReplicator = context.WithCancel(ctx)
	n.svc.replicatorDone = make(chan struct{})
	go func() {
		defer close(n.svc.replicatorDone)
		defer tick.Stop()
		select {
		case <-n.registered:
		case <-ctx.Done():
			return
		}
		if err := r.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			n.log.Error("replicator stopped", "err", err)
		}
	}()
	return nil
}

// stopReplicator stops the replicator, if it started, and waits for it: a
// copy in progress is abandoned (what it fetched stays valid in the store
// and is recorded by the next run).
func (n *Node) stopReplicator() {
	if n.svc.stopReplicator != nil {
		n.svc.stopReplicator()
		<-n.svc.replicatorDone
	}
}
