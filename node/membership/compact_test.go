package membership

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/scheduler"
)

// TestCompact: the leader's Compact drops the finished builds older than
// History, in as many commands as CompactBatch needs, and leaves the rest;
// with nothing to drop it commits nothing.
func TestCompact(t *testing.T) {
	fx := newFixture(t)
	fx.m.cfg.History = time.Hour
	fx.q.Join(t, "self", "key-self", 2)
	n := scheduler.CompactBatch + 5
	var drvs []scheduler.Derivation
	var items []scheduler.Item
	for i := range n {
		out := fmt.Sprintf("/gnu/store/%032d-p%d", i, i)
		drvs = append(drvs, scheduler.Derivation{Path: out + ".drv", System: "x86_64-linux",
			Outputs: []scheduler.Output{{Name: "out", Path: out}}})
		items = append(items, scheduler.Item{Path: out, NarHash: "sha256:x"})
	}
	fx.q.Apply(t, &scheduler.HolderAdded{Time: t0, Node: "self", Items: items})
	fx.q.Apply(t, &scheduler.Submit{Time: t0, Derivations: drvs}) // all available: finished at t0
	late := drvs[0]
	late.Path, late.Outputs = "/gnu/store/late.drv", []scheduler.Output{{Name: "out", Path: "/gnu/store/late"}}
	fx.q.Apply(t, &scheduler.Submit{Time: t0.Add(2 * time.Hour), Derivations: []scheduler.Derivation{late}})

	fx.clock.Add(150 * time.Minute) // t0 is 2.5h old, the late build 30 min
	before := fx.mesh.applies.Load()
	if err := fx.m.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := fx.mesh.applies.Load() - before; got != 2 {
		t.Errorf("%d commands committed for %d builds, want 2", got, n)
	}
	fx.q.FSM.Read(func(s *scheduler.State) {
		if s.NumCompacted() != n || s.Compacted(scheduler.BuildID(n+1)) {
			t.Errorf("%d builds compacted, the late one %v; want %d and no", s.NumCompacted(), s.Compacted(scheduler.BuildID(n+1)), n)
		}
	})
	before = fx.mesh.applies.Load()
	if err := fx.m.Compact(context.Background()); err != nil || fx.mesh.applies.Load() != before {
		t.Errorf("nothing to compact: %v, %d commands", err, fx.mesh.applies.Load()-before)
	}
}
