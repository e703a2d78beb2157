package node

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/tbfg/tbfg-node/node/adminapi"
)

// TestNewLeaderAllocates checks that the allocation loop follows
// leadership: the leader of a three-node mesh leaves, handing leadership to
// another node, which then allocates a derivation submitted after the
// handover.
func TestNewLeaderAllocates(t *testing.T) {
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	first := startNode(t, loopbackConfig(t, "n1", ModeInit, dirs[0]))
	nodes := []*running{first}
	for i, dir := range dirs[1:] {
		cfg := loopbackConfig(t, fmt.Sprintf("n%d", i+2), ModeJoin, dir)
		cfg.Secret, cfg.Peers = first.n.Secret(), first.n.Addrs()
		cfg.Systems = []string{"x86_64-linux"}
		nodes = append(nodes, startNode(t, cfg))
	}
	c1, c2 := adminapi.NewClient(dirs[0]), adminapi.NewClient(dirs[1])
	defer c1.Close()
	defer c2.Close()
	ctx := context.Background()
	waitUntil(t, "n1 leads three voters", func() error { return leads(ctx, c2, first.n.ID(), 3) })
	if _, err := c1.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	others := []string{nodes[1].n.ID(), nodes[2].n.ID()}
	var leader string
	waitUntil(t, "another node leads", func() error {
		st, err := c2.Status(ctx)
		if err != nil {
			return err
		}
		if leader = st.Leader; !slices.Contains(others, leader) {
			return fmt.Errorf("leader %q", leader)
		}
		return nil
	})
	src := t.TempDir()
	drv := writeTestDrv(t, src, "after-handover", nil)
	res, err := c2.Submit(ctx, adminapi.SubmitRequest{Derivations: []string{file(src, drv)}})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the build allocated by the new leader", func() error {
		got, err := c2.Builds(ctx, adminapi.BuildQuery{IDs: []uint64{res.Roots[0].ID}})
		if err != nil {
			return err
		}
		if len(got) != 1 || got[0].State != "allocated" || !slices.Contains(others, got[0].Node) {
			return fmt.Errorf("builds %+v (leader %s)", got, leader)
		}
		return nil
	})
}

// leads checks that c's node sees leader lead a configuration of voters.
func leads(ctx context.Context, c *adminapi.Client, leader string, voters int) error {
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	if st.Leader != leader || st.Voters != voters {
		return fmt.Errorf("leader %s, %d voters", st.Leader, st.Voters)
	}
	return nil
}
