package replicate

import (
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tbfg/tbfg-node/scheduler"
)

// ticking starts a replicator for node that a one-second ticker wakes, as
// the node's does, with fetcher f.
func ticking(t *testing.T, m *mesh, node string, f *fetcher, edit func(*Config)) *started {
	t.Helper()
	tick := time.NewTicker(time.Second)
	t.Cleanup(tick.Stop)
	return start(t, m, node, func(c *Config) {
		c.Fetcher, c.Tick = f, tick.C
		if edit != nil {
			edit(c)
		}
	})
}

// TestTakeoverAfterTargetFails runs the three non-holders of an item, the
// first-ranked one unable to fetch: the second-ranked one takes the copy
// once the item stayed under-replicated for Takeover, not before, the
// third-ranked one never does, and the first stops trying.
func TestTakeoverAfterTargetFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		members := []string{"A", "B", "C", "D"}
		m := newMesh(t, members...)
		x := item("x")
		m.hold(t, "A", x)
		rank := Targets(x.Path, members, []string{"A"}, len(members))
		first := ticking(t, m, rank[0], &fetcher{fail: true}, nil)
		second := ticking(t, m, rank[1], &fetcher{}, nil)
		third := ticking(t, m, rank[2], &fetcher{}, nil)
		begin := time.Now()

		time.Sleep(DefaultTakeover - 2*time.Second)
		synctest.Wait()
		if hs := m.holders(x.Path); !slices.Equal(hs, []string{"A"}) {
			t.Fatalf("before Takeover: %s held by %v, want A only", x.Path, hs)
		}
		if got := second.f.fetched(); len(got) > 0 {
			t.Fatalf("second-ranked %s fetched %v before Takeover", rank[1], got)
		}

		time.Sleep(time.Until(begin.Add(DefaultTakeover + 2*time.Second)))
		synctest.Wait()
		if hs := m.holders(x.Path); !slices.Equal(hs, []string{"A", rank[1]}) {
			t.Fatalf("after Takeover: %s held by %v, want A and %s", x.Path, hs, rank[1])
		}
		tries := len(first.f.fetched())

		time.Sleep(5 * DefaultTakeover)
		synctest.Wait()
		if hs := m.holders(x.Path); !slices.Equal(hs, []string{"A", rank[1]}) {
			t.Errorf("in the end: %s held by %v, want A and %s", x.Path, hs, rank[1])
		}
		if got := third.f.fetched(); len(got) > 0 {
			t.Errorf("third-ranked %s fetched %v", rank[2], got)
		}
		if got := len(first.f.fetched()); got != tries {
			t.Errorf("failing %s tried %d times, then %d: it goes on after the item is held twice", rank[0], tries, got)
		}
	})
}

// TestNoTakeoverWhileTargetsCopy runs every member of a mesh whose fetches
// take a while but succeed, with a backlog of several batches, over many
// Takeover periods and two waves of new items: every copy goes to the
// item's targets and no member fetches anything else.
func TestNoTakeoverWhileTargetsCopy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		members := []string{"A", "B", "C", "D", "E"}
		m := newMesh(t, members...)
		rs := map[string]*started{}
		for _, n := range members {
			rs[n] = ticking(t, m, n, &fetcher{delay: 3 * time.Second}, func(c *Config) {
				c.Copies, c.Batch = 3, 2
			})
		}
		want := map[string][]string{} // by member, the paths it should fetch
		var items []scheduler.Item
		for wave := range 2 {
			for i := range 20 {
				it := item(fmt.Sprintf("wave-%d-%d", wave, i))
				owner := members[i%len(members)]
				m.hold(t, owner, it)
				for _, n := range Targets(it.Path, members, []string{owner}, 3) {
					want[n] = append(want[n], it.Path)
				}
				items = append(items, it)
			}
			time.Sleep(5 * DefaultTakeover)
			synctest.Wait()
		}
		for _, it := range items {
			if hs := m.holders(it.Path); len(hs) != 3 {
				t.Errorf("%s held by %v, want 3 holders", it.Path, hs)
			}
		}
		for _, n := range members {
			got := slices.Sorted(slices.Values(rs[n].f.fetched()))
			if w := slices.Sorted(slices.Values(want[n])); !slices.Equal(got, w) {
				t.Errorf("%s fetched %d items %v, want its %d targets %v", n, len(got), got, len(w), w)
			}
		}
	})
}

// TestAgesForgotten looks at the ages a replicator keeps: one per
// under-replicated item, also past a full batch; the same age while the
// item stays so; none once it is fully held. An item under-replicated
// again later starts from zero, so a stand-in does not take it at once.
func TestAgesForgotten(t *testing.T) {
	members := []string{"A", "B", "C", "D"}
	m := newMesh(t, members...)
	var items []scheduler.Item
	for i := range 4 {
		items = append(items, item(fmt.Sprintf("age-%d", i)))
	}
	m.hold(t, "A", items...)
	x := items[0]
	rank := Targets(x.Path, members, []string{"A"}, len(members))
	r, err := New(Config{Node: rank[1], FSM: m.FSM, Applier: m.Applier, Fetcher: &fetcher{}, Batch: 1})
	if err != nil {
		t.Fatal(err)
	}
	since := func(path string) time.Time { return r.ages.paths[path].since }
	picks := func(now time.Time) bool {
		return slices.ContainsFunc(r.pick(now), func(it scheduler.ItemInfo) bool { return it.Path == x.Path })
	}

	t0 := time.Now()
	r.pick(t0)
	// Every candidate is chosen after enough periods: the batch of one is
	// full at the first item, and the scan must still see the others.
	late := t0.Add(10 * DefaultTakeover)
	if got := r.pick(late); len(got) != 1 {
		t.Fatalf("picked %d items late, want a batch of 1", len(got))
	}
	if len(r.ages.paths) != len(items) {
		t.Fatalf("ages of %d items, want all %d, past the batch of 1", len(r.ages.paths), len(items))
	}
	for _, it := range items {
		if s := since(it.Path); !s.Equal(t0) {
			t.Errorf("age of %s starts at %v, want %v", it.Path, s, t0)
		}
	}

	m.hold(t, rank[2], items...)
	r.pick(late.Add(time.Second))
	if len(r.ages.paths) > 0 {
		t.Errorf("ages kept for fully held items: %v", r.ages.paths)
	}

	m.Apply(t, &scheduler.NodeLost{Time: time.Now(), Node: rank[2]})
	again := late.Add(time.Hour)
	if picks(again) {
		t.Errorf("%s took %s at once when it was under-replicated again", rank[1], x.Path)
	}
	if s := since(x.Path); !s.Equal(again) {
		t.Errorf("age of %s under-replicated again starts at %v, want %v", x.Path, s, again)
	}
	r.cfg.Batch = len(items) // room for x after the items C is a target for
	if !picks(again.Add(DefaultTakeover)) {
		t.Errorf("%s did not take %s a Takeover later", rank[1], x.Path)
	}
}

// TestAgeRestartsOnNewHolder checks that an item's age starts again when it
// gains a holder but still needs copies: the target for the last copy gets
// a Takeover period of its own before anyone stands in for it.
func TestAgeRestartsOnNewHolder(t *testing.T) {
	members := []string{"A", "B", "C", "D"}
	m := newMesh(t, members...)
	x := item("x")
	m.hold(t, "A", x)
	rank := Targets(x.Path, members, []string{"A"}, len(members))
	r, err := New(Config{Node: rank[2], FSM: m.FSM, Applier: m.Applier, Fetcher: &fetcher{}, Copies: 3})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	r.pick(t0)
	m.hold(t, rank[0], x)
	t1 := t0.Add(DefaultTakeover)
	if got := r.pick(t1); len(got) > 0 {
		t.Errorf("%s stood in for %v when it had just gained a holder", rank[2], got[0].Path)
	}
	if s := r.ages.paths[x.Path].since; !s.Equal(t1) {
		t.Errorf("age of %s starts at %v after a new holder, want %v", x.Path, s, t1)
	}
	if got := r.pick(t1.Add(DefaultTakeover)); len(got) != 1 {
		t.Errorf("%s picked %d items a Takeover after the new holder, want 1", rank[2], len(got))
	}
}

// TestOwnShareFirst gives a node a batch of one, an item it could stand in
// for and, later in the state's order, one it is a target for: it takes
// its own share first.
func TestOwnShareFirst(t *testing.T) {
	members := []string{"A", "B", "C"}
	m := newMesh(t, members...)
	var x, y scheduler.Item // x: B is second-ranked; y: B is first
	for i := 0; x.Path == "" || y.Path == ""; i++ {
		it := item(fmt.Sprintf("share-%d", i))
		switch rank := Targets(it.Path, members, []string{"A"}, 3); {
		case rank[1] == "B" && x.Path == "":
			x = it
		case rank[0] == "B" && x.Path != "" && y.Path == "":
			y = it
		}
	}
	m.hold(t, "A", x, y)
	r, err := New(Config{Node: "B", FSM: m.FSM, Applier: m.Applier, Fetcher: &fetcher{}, Batch: 1})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	r.pick(t0)
	got := r.pick(t0.Add(DefaultTakeover))
	if len(got) != 1 || got[0].Path != y.Path {
		t.Errorf("picked %v, want only its own %s", got, y.Path)
	}
	r.cfg.Batch = 2
	if got := r.pick(t0.Add(DefaultTakeover)); len(got) != 2 {
		t.Errorf("picked %d items with room for both, want 2", len(got))
	}
}

// TestClockStepsBack looks at an item again at an earlier time, as after a
// clock stepped back: its target still takes it.
func TestClockStepsBack(t *testing.T) {
	members := []string{"A", "B", "C"}
	m := newMesh(t, members...)
	x := item("x")
	m.hold(t, "A", x)
	target := Targets(x.Path, members, []string{"A"}, 2)[0]
	r, err := New(Config{Node: target, FSM: m.FSM, Applier: m.Applier, Fetcher: &fetcher{}})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	r.pick(t0)
	if got := r.pick(t0.Add(-time.Hour)); len(got) != 1 {
		t.Errorf("target %s picked %d items an hour back, want its 1", target, len(got))
	}
}
