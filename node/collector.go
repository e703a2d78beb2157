package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tbfg/tbfg-node/internal/hostinfo"
	"github.com/tbfg/tbfg-node/node/adminapi"
	"github.com/tbfg/tbfg-node/node/gc"
)

// minGrace is the shortest time an item stays after its last use.
const minGrace = 10 * time.Second

// startCollector runs the store collector, which keeps the store under
// --store-max and its disk above --min-free by removing what the mesh can
// spare. Like the replicator it waits until this node is registered in its
// replica: before that the replica may not know which copies are recorded
// here nor which builds need what.
func (n *Node) startCollector() error {
	tick := time.NewTicker(n.cfg.GCInterval)
	c, err := gc.New(gc.Config{
		Node: n.mesh.ID(), FSM: n.fsm, Applier: n.mesh, Store: n.store,
		Replicas: n.cfg.Replicas, StoreMax: n.cfg.StoreMax, MinFree: n.cfg.MinFree,
		DiskFree: n.storeFree, Tick: tick.C, Grace: max(2*n.cfg.GCInterval, minGrace),
		Removed: func(r gc.Removal) { n.metrics.StoreItemRemoved(r.Class.String(), r.Size) },
		Logger:  n.log.With("component", "gc"),
	})
	if err != nil {
		tick.Stop()
		return fmt.Errorf("store collector: %w", err)
	}
	n.loops.Defer("collector ticker", stopTicker(tick))
	// Stopping the collector between a commit and the removal leaves a
	// valid copy that is no longer recorded: the next run removes it.
	n.loops.Go("store collector", n.members.Registered(), func(ctx context.Context) error {
		n.collector.Store(c)
		if err := c.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			n.log.Error("store collector stopped", "err", err)
		}
		return nil
	})
	return nil
}

// storeFree is the free space on the store's disk.
func (n *Node) storeFree() (int64, error) {
	free, err := hostinfo.FreeBytes(n.storeRealDir())
	return int64(min(free, 1<<62)), err
}

// GC collects the store now (adminapi.Backend).
func (n *Node) GC(ctx context.Context, req adminapi.GCRequest) (adminapi.GCResult, error) {
	c := n.collector.Load()
	if !n.running() || c == nil {
		return adminapi.GCResult{}, fmt.Errorf("%w: the store collector is not running yet", adminapi.ErrUnavailable)
	}
	rep, err := c.Collect(ctx, gc.Request{DryRun: req.DryRun, Free: req.Free})
	res := adminapi.GCResult{DryRun: req.DryRun, StoreSize: rep.StoreSize, Want: rep.Want, Freed: rep.Freed,
		Removed: make([]adminapi.GCItem, len(rep.Removed))}
	for i, r := range rep.Removed {
		res.Removed[i] = adminapi.GCItem{Path: r.Path, Size: r.Size, Class: r.Class.String()}
	}
	return res, err
}
