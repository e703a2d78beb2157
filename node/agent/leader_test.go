package agent

import (
	"context"
	"testing"

	"github.com/tbfg/tbfg-node/internal/nixtest"
	"github.com/tbfg/tbfg-node/scheduler"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/local"
	"github.com/tbfg/tbfg-node/substitutes/nixkey"
)

// TestWithLeader runs the graph with the scheduler's own allocation loop
// choosing the nodes, as in a running mesh: every build ends in the state it
// must, and each output's record matches what Nix builds.
func TestWithLeader(t *testing.T) {
	requireRoot(t)
	n := nixtest.New(t, store.GuixDir)
	c := newCluster(t)
	nodes := []*node{c.join(t, "A", 1), c.join(t, "B", 1)}
	drvs := instantiateGraph(t, n)
	ids := c.submitGraph(t, nodes[0], n, drvs)
	leader, err := scheduler.NewLeader(scheduler.LeaderConfig{FSM: c.FSM, Applier: c.Applier, Now: c.clock.Now,
		Nodes: func() []scheduler.NodeView {
			return []scheduler.NodeView{{ID: "A", Cores: 2, FreeDisk: 1 << 40}, {ID: "B", Cores: 2, FreeDisk: 1 << 40}}
		}, Logger: testLogger(t, "leader")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- leader.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	for _, nd := range nodes {
		start(t, c.config(t, nd, newBuiltin(t, nd), 1))
	}
	c.waitGraph(t, ids)
	nixInfos := nixBuild(t, n, drvs["c"])
	stores := map[string]*local.Store{"A": nodes[0].store, "B": nodes[1].store}
	nixKeys := []nixkey.PublicKey{nodes[0].signer.Nix.Public(), nodes[1].signer.Nix.Public()}
	for _, name := range []string{"a", "b", "c"} {
		for _, o := range c.Build(t, ids[name]).Outputs {
			c.checkOutput(t, o.Path, nixInfos, stores, c.memberKeys(t), nixKeys)
		}
	}
}
