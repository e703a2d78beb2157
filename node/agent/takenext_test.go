package agent

import (
	"context"
	"testing"

	"github.com/tbfg/tbfg-node/node/executor"
	"github.com/tbfg/tbfg-node/scheduler"
	"github.com/tbfg/tbfg-node/store"
)

// TestTakeNextContinuesAChain: an agent that takes the next build runs a
// chain whose first build alone was allocated, with no allocation loop and
// no Started commit for the others; without TakeNext the chain stops after
// the first build.
func TestTakeNextContinuesAChain(t *testing.T) {
	for _, take := range []bool{true, false} {
		c := newCluster(t)
		n := c.join(t, "A", 1)
		var drvs []scheduler.Derivation
		for i, name := range []string{"a", "b", "c"} {
			var prev *scheduler.Derivation
			if i > 0 {
				prev = &drvs[i-1]
			}
			drvs = append(drvs, chainDrv(t, n, name, prev))
		}
		var items []scheduler.Item
		for _, d := range drvs {
			its, err := n.signer.Items(n.store, store.Path(d.Path))
			if err != nil {
				t.Fatal(err)
			}
			items = append(items, its...)
		}
		ids, err := scheduler.DecodeSubmitResponse(c.Apply(t, &scheduler.Submit{Time: c.clock.Now(), Submitter: "test",
			Node: n.id, Items: items, Derivations: drvs}))
		if err != nil {
			t.Fatal(err)
		}
		cfg := c.config(t, n, executor.Func(func(_ context.Context, req executor.Request) (*executor.Result, error) {
			return builtOutputs(n.store, req)
		}), 1)
		cfg.TakeNext = func() bool { return take }
		stop := start(t, cfg)
		c.allocate(t, ids[0], "A")
		last := ids[0]
		if take {
			last = ids[2]
		}
		c.WaitFor(t, "the chain built", func(s *scheduler.State) bool {
			b, _ := s.Build(last)
			return b.State == scheduler.BuildSucceeded
		})
		stop()
		for _, id := range ids[1:] {
			b := c.Build(t, id)
			if want := map[bool]scheduler.BuildState{true: scheduler.BuildSucceeded, false: scheduler.BuildQueued}[take]; b.State != want {
				t.Errorf("take next %v: build %d is %s, want %s", take, id, b.State, want)
			}
		}
	}
}
