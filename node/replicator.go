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
		Node: n.mesh.ID(), FSM: n.fsm, Applier: n.applier(), Fetcher: n.source,
		Copies: n.cfg.Replicas, Tick: tick.C, Logger: n.log.With("component", "replicate"),
	})
	if err != nil {
		tick.Stop()
		return fmt.Errorf("replicator: %w", err)
	}
	n.replicator.Store(r)
	n.loops.Defer("replicator ticker", stopTicker(tick))
	// Stopping the replicator abandons a copy in progress: what it fetched
	// stays valid in the store and is recorded by the next run.
	n.loops.Go("replicator", n.members.Registered(), func(ctx context.Context) error {
		if err := r.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			n.log.Error("replicator stopped", "err", err)
		}
		return nil
	})
	return nil
}
