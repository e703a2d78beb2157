package node

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/node/adminapi"
	"github.com/tbfg/tbfg-node/scheduler"
)

// TestNodeCompactsHistory runs a one-node mesh whose leader's clock a test
// moves: once a finished build is older than --history, the leader's
// compaction loop drops its record, the admin API says it was compacted,
// its output stays available, and submitting the derivation again builds
// nothing (a new build, available at once).
func TestNodeCompactsHistory(t *testing.T) {
	dir := t.TempDir()
	cfg := loopbackConfig(t, "n1", ModeInit, dir)
	cfg.MaxBuilds, cfg.Systems = 1, []string{"aarch64-linux"} // nothing runs the x86_64 builds
	var skew atomic.Int64
	cfg.now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	cfg.compactEvery = 50 * time.Millisecond
	r := startNode(t, cfg)
	c := adminapi.NewClient(dir)
	defer c.Close()
	ctx := context.Background()

	src := t.TempDir()
	leaf := writeTestDrv(t, src, "leaf", nil)
	res, err := c.Submit(ctx, adminapi.SubmitRequest{Derivations: []string{file(src, leaf)}})
	if err != nil {
		t.Fatal(err)
	}
	id := res.Builds[0].ID
	bs, err := c.Builds(ctx, adminapi.BuildQuery{IDs: []uint64{id}})
	if err != nil {
		t.Fatal(err)
	}
	out := bs[0].Outputs["out"]
	// The output appears (built elsewhere, say), and the build is canceled:
	// it is finished, its output available.
	item := scheduler.Item{Path: out, NarHash: "sha256:0000000000000000000000000000000000000000000000000000", NarSize: 1}
	if _, err := r.n.mesh.Apply(ctx, scheduler.Encode(&scheduler.HolderAdded{Time: time.Now(), Node: r.n.mesh.ID(),
		Items: []scheduler.Item{item}})); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Cancel(ctx, []uint64{id}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Builds(ctx, adminapi.BuildQuery{IDs: []uint64{id}}); err != nil {
		t.Fatalf("build %d within the history: %v", id, err)
	}

	skew.Store(int64(DefaultHistory + time.Hour))
	waitUntil(t, "the leader to compact the build", func() error {
		_, err := c.Builds(ctx, adminapi.BuildQuery{IDs: []uint64{id}})
		if err == nil {
			return errors.New("build still listed")
		}
		if !errors.Is(err, adminapi.ErrNoBuild) || !strings.Contains(err.Error(), "compacted: finished more than 30d ago") {
			t.Fatalf("reading a compacted build: %v", err)
		}
		return nil
	})
	again, err := c.Submit(ctx, adminapi.SubmitRequest{Derivations: []string{file(src, leaf)}})
	if err != nil {
		t.Fatal(err)
	}
	if b := again.Builds[0]; b.ID == id || b.State != "available" {
		t.Fatalf("submitted again after compaction: build %d %s; want a new build, available", b.ID, b.State)
	}
	if _, err := c.Cancel(ctx, []uint64{id}); err == nil || !strings.Contains(err.Error(), "compacted") {
		t.Errorf("cancel of a compacted build: %v", err)
	}
}
