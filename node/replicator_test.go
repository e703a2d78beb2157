package node

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/hostinfo"
	"github.com/tbfg/tbfg-node/scheduler"
	"github.com/tbfg/tbfg-node/store"
)

// TestNodesReplicateOutputs runs two nodes, submits a graph on the second
// and checks that once the builds succeeded, every output and every
// submitted .drv is held by both nodes: the state lists both as holders,
// and each node's own store has the item valid.
func TestNodesReplicateOutputs(t *testing.T) {
	requireRoot(t)
	system := hostinfo.NativeSystems(runtime.GOARCH)[0]
	nodes, _, c := startBuildNodes(t, 2, system, nil)
	g := writeBuildGraph(t, t.TempDir(), system, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	submitGraph(ctx, t, nodes[1], g)
	waitBuilt(t, c, len(g.files))
	items := slices.Clone(g.outputs)
	for _, f := range g.files {
		drv, err := store.GuixDir.Join(filepath.Base(f))
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, drv)
	}
	waitUntil(t, "every output and .drv held by both nodes", func() error {
		return heldByAll(nodes, items)
	})
}

// heldByAll checks that every node's replica lists every node as a holder
// of each item, and that each node's store has it valid.
func heldByAll(nodes []*running, items []store.Path) error {
	var ids []string
	for _, r := range nodes {
		ids = append(ids, r.n.ID())
	}
	slices.Sort(ids)
	for _, r := range nodes {
		for _, p := range items {
			var it scheduler.ItemInfo
			var ok bool
			r.n.FSM().Read(func(s *scheduler.State) { it, ok = s.Item(string(p)) })
			if hs := slices.Sorted(slices.Values(it.Holders)); !ok || !slices.Equal(hs, ids) {
				return fmt.Errorf("%s: %s held by %v, want %v", r.n.ID(), p, it.Holders, ids)
			}
			if valid, err := r.n.store.IsValid(p); err != nil || !valid {
				return fmt.Errorf("%s: %s not valid in its store (%v)", r.n.ID(), p, err)
			}
		}
	}
	return nil
}

func TestValidateReplicas(t *testing.T) {
	for _, tc := range []struct {
		replicas int
		ok       bool
	}{{-1, false}, {0, false}, {1, true}, {2, true}, {5, true}} {
		t.Run(fmt.Sprint(tc.replicas), func(t *testing.T) {
			c := DefaultConfig()
			c.DataDir, c.Replicas = t.TempDir(), tc.replicas
			err := c.Validate()
			switch {
			case tc.ok && err != nil:
				t.Fatalf("Validate() = %v", err)
			case !tc.ok && (!errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "--replicas")):
				t.Fatalf("Validate() = %v, want ErrConfig naming --replicas", err)
			}
		})
	}
	if c := DefaultConfig(); c.Replicas != DefaultReplicas {
		t.Errorf("default replicas %d, want %d", c.Replicas, DefaultReplicas)
	}
}
