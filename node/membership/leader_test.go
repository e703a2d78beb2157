package membership

import (
	"slices"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/mesh"
	"github.com/tbfg/tbfg-node/scheduler"
)

// TestLostMembers checks the rule for declaring a member lost: gone from
// the Raft configuration or silent in gossip for longer than RemoveAfter,
// counted from its last gossip or its last registration, whichever is
// later; never heard while in the configuration is not silent.
func TestLostMembers(t *testing.T) {
	never := time.Time{}
	for _, tc := range []struct {
		name     string
		joined   time.Duration // before now
		inConfig bool
		heard    time.Duration // before now; -1: never heard by gossip
		status   string        // what happened to it after joining: "", "left" or "lost"
		lost     bool
	}{
		{"heard recently", 10 * time.Minute, true, 10 * time.Second, "", false},
		{"silent in the configuration", 10 * time.Minute, true, 2 * time.Minute, "", true},
		{"silent exactly RemoveAfter", 10 * time.Minute, true, removeAfter, "", false},
		{"never heard, in the configuration", 10 * time.Minute, true, -1, "", false},
		{"gone from the configuration", 10 * time.Minute, false, 2 * time.Minute, "", true},
		{"gone and never heard", 10 * time.Minute, false, -1, "", true},
		{"gone but registered again lately", 30 * time.Second, false, -1, "", false},
		{"silent but registered again lately", 30 * time.Second, true, 5 * time.Minute, "", false},
		{"left", 10 * time.Minute, false, -1, "left", false},
		{"already lost", 10 * time.Minute, false, -1, "lost", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t)
			now := t0.Add(time.Hour)
			fx.clock.Add(time.Hour - tc.joined)
			fx.q.Join(t, "x", "key-x", 1)
			switch tc.status {
			case "left":
				fx.q.Apply(t, &scheduler.NodeLeft{Time: fx.clock.Now(), Node: "x"})
			case "lost":
				fx.q.Apply(t, &scheduler.NodeLost{Time: fx.clock.Now(), Node: "x"})
			}
			// This node itself, silent and outside the configuration, is
			// never its own lost member.
			fx.q.Join(t, "self", "key-self", 1)
			config := []mesh.Member{}
			if tc.inConfig {
				seen := never
				if tc.heard >= 0 {
					seen = now.Add(-tc.heard)
				}
				config = append(config, mesh.Member{ID: "x", LastSeen: seen})
			}
			fx.mesh.setMembers(config...)
			got := fx.m.lostMembers(now)
			if want := map[bool][]string{true: {"x"}}[tc.lost]; !slices.Equal(got, want) {
				t.Errorf("lostMembers = %q, want %q", got, want)
			}
		})
	}
}

func TestReapLostCommitsNodeLost(t *testing.T) {
	fx := newFixture(t)
	fx.q.Join(t, "x", "key-x", 1)
	fx.clock.Add(2 * removeAfter)
	fx.m.reapLost(t.Context())
	if mi, _ := fx.member("x"); mi.Status != "lost" {
		t.Fatalf("member x is %q after reapLost, want lost", mi.Status)
	}
	applies := fx.mesh.applies.Load()
	fx.m.reapLost(t.Context())
	if fx.mesh.applies.Load() != applies {
		t.Error("a lost member was declared lost again")
	}
}

// TestNodeViews checks that the scheduler sees the members heard from
// within three gossip intervals, with their gossiped figures.
func TestNodeViews(t *testing.T) {
	fx := newFixture(t)
	st := &mesh.NodeStatus{RunningBuilds: 1, Load1: 0.5, Cores: 4, StoreFreeBytes: 1 << 30, MinFree: 5 << 30, MaxLoad: 6, Speed: 1.5}
	fx.mesh.setMembers(
		mesh.Member{ID: "fresh", LastSeen: t0.Add(-2 * time.Second), Status: st},
		mesh.Member{ID: "edge", LastSeen: t0.Add(-3 * time.Second), Status: st},
		mesh.Member{ID: "stale", LastSeen: t0.Add(-4 * time.Second), Status: st},
		mesh.Member{ID: "unheard"},
	)
	got := fx.m.nodeViews()
	want := []scheduler.NodeView{
		{ID: "fresh", Running: 1, Load1: 0.5, Cores: 4, FreeDisk: 1 << 30, MinFree: 5 << 30, LoadLimit: 6, Speed: 1.5},
		{ID: "edge", Running: 1, Load1: 0.5, Cores: 4, FreeDisk: 1 << 30, MinFree: 5 << 30, LoadLimit: 6, Speed: 1.5},
	}
	if !slices.Equal(got, want) {
		t.Errorf("nodeViews = %+v, want %+v", got, want)
	}
	if why := got[0].NoBuildsReason(scheduler.PlanOptions{}); why != "disk: 1.0 GiB free < min-free 5.0 GiB" {
		t.Errorf("reason a node below min-free takes no builds: %q", why)
	}
}

// TestLeaderAllocates checks that the allocation loop runs once the mesh
// reports this node as leader: a build submitted then is allocated to the
// one member that gossips free slots.
func TestLeaderAllocates(t *testing.T) {
	fx := newFixture(t)
	fx.mesh.setMembers(mesh.Member{ID: "self", LastSeen: t0,
		Status: &mesh.NodeStatus{Systems: []string{"x86_64-linux"}, MaxBuilds: 2, Cores: 2, StoreFreeBytes: 1 << 40}})
	fx.run(t)
	<-fx.m.Registered()
	fx.mesh.lead <- true
	fx.q.Apply(t, &scheduler.Submit{Time: t0, Submitter: "test", Node: "self", Derivations: []scheduler.Derivation{{
		Path: "/gnu/store/0123456789abcdfghijklmnpqrsvwxyz-hello.drv", System: "x86_64-linux",
		Outputs: []scheduler.Output{{Name: "out", Path: "/gnu/store/0123456789abcdfghijklmnpqrsvwxyz-hello"}}}}})
	fx.q.WaitFor(t, "the build allocated by the leader", func(s *scheduler.State) bool {
		b, ok := s.Build(1)
		return ok && b.State == scheduler.BuildAllocated && b.Node == "self"
	})
}
