package scheduler

import (
	"fmt"
	"reflect"
	"testing"
)

// views gives every node a healthy view.
func views(ids ...string) []NodeView {
	out := make([]NodeView, len(ids))
	for i, id := range ids {
		out[i] = NodeView{ID: id, Cores: 4, FreeDisk: 100 << 30, Speed: 1}
	}
	return out
}

func planIDs(plan []Allocation) []string {
	var out []string
	for _, a := range plan {
		out = append(out, fmt.Sprintf("%d@%s", a.Build, a.Node))
	}
	return out
}

func TestPlan(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, s *State)
		views []NodeView
		want  []string
	}{
		{"priority then age, up to free slots", func(t *testing.T, s *State) {
			mustApply(t, s, joined("n1", 2, x86))
			submit(t, s, drv("a", x86), drv("b", x86))
			mustApply(t, s, &Submit{Priority: 5, Derivations: []Derivation{drv("c", x86)}})
		}, views("n1"), []string{"3@n1", "1@n1"}},
		{"builds with missing inputs wait", func(t *testing.T, s *State) {
			mustApply(t, s, joined("n1", 4, x86))
			submit(t, s, drv("a", x86), drv("b", x86, "a"))
		}, views("n1"), []string{"1@n1"}},
		{"no view means no allocation", func(t *testing.T, s *State) {
			mustApply(t, s, joined("n1", 4, x86))
			submit(t, s, drv("a", x86))
		}, views("n2"), nil},
		{"load at its limit and low disk are filtered", func(t *testing.T, s *State) {
			mustApply(t, s, joined("busy", 4, x86))
			mustApply(t, s, joined("full", 4, x86))
			submit(t, s, drv("a", x86))
		}, []NodeView{{ID: "busy", Load1: 8, LoadLimit: 8, FreeDisk: 1 << 40}, {ID: "full", FreeDisk: 1 << 20}}, nil},
		{"reported running builds use slots", func(t *testing.T, s *State) {
			mustApply(t, s, joined("n1", 2, x86))
			submit(t, s, drv("a", x86), drv("b", x86))
		}, []NodeView{{ID: "n1", Running: 1, FreeDisk: 1 << 40}}, []string{"1@n1"}},
		{"features and systems filter nodes", func(t *testing.T, s *State) {
			mustApply(t, s, joined("plain", 4, x86))
			mustApply(t, s, &NodeJoined{Node: "kvm", Systems: []string{x86}, Features: []string{"kvm"}, MaxBuilds: 1})
			k := drv("k", x86)
			k.Features = []string{"kvm"}
			submit(t, s, drv("arm", "aarch64-linux"), k)
		}, views("plain", "kvm"), []string{"2@kvm"}},
		{"idle cores break a tie in free slots", func(t *testing.T, s *State) {
			mustApply(t, s, joined("loaded", 2, x86))
			mustApply(t, s, joined("idle", 2, x86))
			submit(t, s, drv("a", x86))
		}, []NodeView{{ID: "idle", Cores: 4, Load1: 1, FreeDisk: 1 << 40}, {ID: "loaded", Cores: 4, Load1: 3, FreeDisk: 1 << 40, Speed: 2}},
			[]string{"1@idle"}},
		{"inputs held locally win, then spare capacity, then speed", func(t *testing.T, s *State) {
			for _, n := range []string{"n1", "n2", "n3"} {
				mustApply(t, s, joined(n, 2, x86))
			}
			mustApply(t, s, &HolderAdded{Node: "n2", Items: []Item{item(outPath("src"))}})
			with := drv("with-src", x86)
			with.Sources = []string{outPath("src")}
			mustApply(t, s, &Submit{Priority: 1, Derivations: []Derivation{with}})
			submit(t, s, drv("x", x86), drv("y", x86))
		}, []NodeView{{ID: "n1", FreeDisk: 1 << 40, Speed: 1}, {ID: "n2", FreeDisk: 1 << 40, Speed: 1},
			{ID: "n3", FreeDisk: 1 << 40, Speed: 3}}, []string{"1@n2", "2@n3", "3@n1"}},
		{"the holder of the .drv wins a tie in inputs", func(t *testing.T, s *State) {
			for _, n := range []string{"n1", "n2", "n3"} {
				mustApply(t, s, joined(n, 2, x86))
			}
			mustApply(t, s, &Submit{Time: t0, Node: "n2", Derivations: []Derivation{drv("a", x86)},
				Items: []Item{item(drvPath("a"))}})
		}, []NodeView{{ID: "n1", FreeDisk: 1 << 40}, {ID: "n2", FreeDisk: 1 << 40},
			{ID: "n3", FreeDisk: 1 << 40, Speed: 3}}, []string{"1@n2"}},
		{"a node below its own min-free takes no builds", func(t *testing.T, s *State) {
			mustApply(t, s, joined("a-low", 4, x86))
			mustApply(t, s, joined("b-ok", 1, x86))
			submit(t, s, drv("a", x86), drv("b", x86))
		}, []NodeView{{ID: "a-low", FreeDisk: 4 << 30, MinFree: 5 << 30}, {ID: "b-ok", FreeDisk: 6 << 30, MinFree: 5 << 30}},
			[]string{"1@b-ok"}},
		{"more free store space breaks a tie", func(t *testing.T, s *State) {
			mustApply(t, s, joined("a-small", 2, x86))
			mustApply(t, s, joined("b-big", 2, x86))
			submit(t, s, drv("a", x86))
		}, []NodeView{{ID: "a-small", FreeDisk: 10 << 30, MinFree: 5 << 30}, {ID: "b-big", FreeDisk: 50 << 30, MinFree: 5 << 30}},
			[]string{"1@b-big"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewState()
			tt.setup(t, s)
			plan := s.Plan(tt.views, t0, PlanOptions{MinFreeDisk: 1 << 30})
			if got := planIDs(plan); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("plan %v, want %v", got, tt.want)
			}
			if len(plan) > 0 {
				mustApply(t, s, &Allocate{Time: t0, Allocations: plan})
			}
		})
	}
}

// TestNoBuildsReason: what status pages say about a node that takes no new
// builds.
func TestNoBuildsReason(t *testing.T) {
	for _, tc := range []struct {
		view NodeView
		opts PlanOptions
		want string
	}{
		{NodeView{FreeDisk: 6 << 30, MinFree: 5 << 30}, PlanOptions{}, ""},
		{NodeView{FreeDisk: 1288490188, MinFree: 5 << 30}, PlanOptions{}, "disk: 1.2 GiB free < min-free 5.0 GiB"},
		{NodeView{FreeDisk: 2 << 30}, PlanOptions{MinFreeDisk: 3 << 30}, "disk: 2.0 GiB free < min-free 3.0 GiB"},
		{NodeView{FreeDisk: 1 << 40, Load1: 9, LoadLimit: 8}, PlanOptions{}, "load: 9.00 >= max-load 8.00"},
		{NodeView{FreeDisk: 1 << 40, Load1: 9}, PlanOptions{}, ""},
	} {
		if got := tc.view.NoBuildsReason(tc.opts); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.view, got, tc.want)
		}
	}
}

// TestPlanFairAcrossSystems: an old i686 backlog must not starve aarch64
// builds submitted later, on a node that builds both.
func TestPlanFairAcrossSystems(t *testing.T) {
	s := NewState()
	mustApply(t, s, joined("both", 4, "i686-linux", "aarch64-linux"))
	var backlog []Derivation
	for i := range 100 {
		backlog = append(backlog, drv(fmt.Sprintf("i686-%d", i), "i686-linux"))
	}
	submit(t, s, backlog...)
	submit(t, s, drv("arm-1", "aarch64-linux"), drv("arm-2", "aarch64-linux"))
	plan := s.Plan(views("both"), t0, PlanOptions{})
	perSystem := map[string]int{}
	for _, a := range plan {
		b, _ := s.Build(a.Build)
		perSystem[b.System]++
	}
	if perSystem["aarch64-linux"] != 2 || perSystem["i686-linux"] != 2 {
		t.Fatalf("plan per system %v, want 2 each", perSystem)
	}
}

func TestPlanDeterministic(t *testing.T) {
	s := NewState()
	for i := range 5 {
		mustApply(t, s, joined(fmt.Sprintf("n%d", i), 3, x86, "aarch64-linux"))
	}
	drvs := distribution(500, []string{x86, "aarch64-linux"}, 1)
	mustApply(t, s, &Submit{Node: "n0", Derivations: drvs, Items: sourceItems(drvs)})
	// Make the whole core available so that libraries and leaves are ready.
	var core []Item
	for _, d := range drvs[:200] {
		core = append(core, item(d.Outputs[0].Path))
	}
	mustApply(t, s, &HolderAdded{Node: "n1", Items: core})
	v := views("n4", "n3", "n2", "n1", "n0")
	first := s.Plan(v, t0, PlanOptions{})
	for range 5 {
		if again := s.Plan(v, t0, PlanOptions{}); !reflect.DeepEqual(first, again) {
			t.Fatal("plans differ between runs")
		}
	}
	if len(first) != 15 {
		t.Fatalf("plan has %d allocations, want 15 (5 nodes × 3)", len(first))
	}
}

// sourceItems returns items for every source of drvs, once each.
func sourceItems(drvs []Derivation) []Item {
	seen := map[string]bool{}
	var out []Item
	for _, d := range drvs {
		for _, src := range d.Sources {
			if !seen[src] {
				seen[src] = true
				out = append(out, item(src))
			}
		}
	}
	return out
}
