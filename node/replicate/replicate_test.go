package replicate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tbfg/tbfg-node/scheduler"
)

// TestChosenSameOnEveryNode lets every member pick from the same state and
// checks that each under-replicated item is picked by exactly the members
// Targets names, never by a holder, never by a lost member, and that the
// copies spread over the mesh.
func TestChosenSameOnEveryNode(t *testing.T) {
	members := []string{"n1", "n2", "n3", "n4", "n5"}
	m := newMesh(t, members...)
	for i := range 60 {
		it := item(fmt.Sprintf("item-%d", i))
		m.hold(t, members[i%5], it)
		if i%3 == 0 {
			m.hold(t, members[(i+2)%5], it)
		}
		if i%7 == 0 {
			m.hold(t, members[(i+4)%5], it)
		}
	}
	for _, tc := range []struct {
		name   string
		copies int
		lost   string
	}{
		{"two copies", 2, ""},
		{"three copies", 3, ""},
		{"five copies", 5, ""},
		{"one member lost", 3, "n4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.lost != "" {
				m.Apply(t, &scheduler.NodeLost{Time: time.Now(), Node: tc.lost})
			}
			picked := pickAll(t, m, members, tc.copies)
			active, spread := m.active(), map[string]bool{}
			m.FSM.Read(func(s *scheduler.State) {
				for _, it := range s.UnderReplicated(tc.copies, 0, nil) {
					want := Targets(it.Path, active, it.Holders, tc.copies)
					got := slices.Sorted(slices.Values(picked[it.Path]))
					if len(want) != min(tc.copies, len(active))-len(it.Holders) {
						t.Errorf("%s with holders %v: targets %v", it.Path, it.Holders, want)
					}
					if !slices.Equal(got, slices.Sorted(slices.Values(want))) {
						t.Errorf("%s with holders %v: picked by %v, targets %v", it.Path, it.Holders, got, want)
					}
					for _, n := range got {
						spread[n] = true
						if slices.Contains(it.Holders, n) || n == tc.lost {
							t.Errorf("%s picked by %s, a holder or lost", it.Path, n)
						}
					}
					delete(picked, it.Path)
				}
			})
			if len(picked) > 0 {
				t.Errorf("picked items that need no copy: %v", picked)
			}
			if len(spread) < 3 {
				t.Errorf("copies go to %v only", spread)
			}
		})
	}
}

// pickAll returns, by path, the members that pick each item.
func pickAll(t *testing.T, m *mesh, members []string, copies int) map[string][]string {
	picked := map[string][]string{}
	for _, n := range members {
		r, err := New(Config{Node: n, FSM: m.FSM, Applier: m.Applier, Fetcher: &fetcher{}, Copies: copies, Batch: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range r.pick(time.Now()) {
			picked[it.Path] = append(picked[it.Path], n)
		}
	}
	return picked
}

// TestTargetsRanking checks Targets on its own: the need, the holders left
// out, and the same order whatever the order of the member list.
func TestTargetsRanking(t *testing.T) {
	p := storePath("hello")
	all := Targets(p, []string{"a", "b", "c", "d"}, nil, 4)
	if len(all) != 4 {
		t.Fatalf("Targets for 4 copies of 4 members: %v", all)
	}
	if again := Targets(p, []string{"d", "c", "b", "a"}, nil, 4); !slices.Equal(all, again) {
		t.Errorf("member order changes the ranking: %v, then %v", all, again)
	}
	if got := Targets(p, []string{"a", "b", "c", "d"}, []string{all[0]}, 2); !slices.Equal(got, all[1:2]) {
		t.Errorf("Targets with %s holding: %v, want %v", all[0], got, all[1:2])
	}
	if got := Targets(p, []string{"a", "b"}, []string{"a", "b"}, 2); got != nil {
		t.Errorf("Targets with enough holders: %v", got)
	}
	if got := Targets(p, []string{"a", "b"}, []string{"a"}, 5); !slices.Equal(got, []string{"b"}) {
		t.Errorf("Targets with too few members: %v", got)
	}
}

// TestRunCopiesAndRecordsReferences runs the only possible target of an
// item with a reference: it fetches the item, whose closure brings the
// reference, and records both, without fetching the reference again.
func TestRunCopiesAndRecordsReferences(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMesh(t, "A", "B")
		lib, app := item("lib"), item("app", "lib")
		m.hold(t, "A", app, lib)
		a := start(t, m, "A", nil)
		b := start(t, m, "B", func(c *Config) { c.Batch = 1 })
		synctest.Wait()
		for _, it := range []scheduler.Item{app, lib} {
			if hs := m.holders(it.Path); !slices.Equal(hs, []string{"A", "B"}) {
				t.Errorf("%s held by %v, want A and B", it.Path, hs)
			}
		}
		if got := b.f.fetched(); !slices.Equal(got, []string{app.Path}) {
			t.Errorf("B fetched %v, want only %s", got, app.Path)
		}
		if got := a.f.fetched(); len(got) > 0 {
			t.Errorf("A fetched %v, which it holds", got)
		}
		b.stop()
		if err := <-b.done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run after cancel: %v", err)
		}
		b.done <- nil // for the cleanup
	})
}

// TestRunCopiesAgainAfterLoss starts a replicator on every member, lets the
// copies be made, then loses the node that took the first item's copy: its
// items get a copy on the remaining node.
func TestRunCopiesAgainAfterLoss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMesh(t, "A", "B", "C")
		var items []scheduler.Item
		for i := range 8 {
			items = append(items, item(fmt.Sprintf("out-%d", i)))
		}
		m.hold(t, "A", items...)
		rs := map[string]*started{}
		for _, n := range []string{"A", "B", "C"} {
			rs[n] = start(t, m, n, nil)
		}
		synctest.Wait()
		want := map[string][]string{}
		for _, it := range items {
			target := Targets(it.Path, []string{"A", "B", "C"}, []string{"A"}, 2)
			want[target[0]] = append(want[target[0]], it.Path)
			if hs := m.holders(it.Path); !slices.Equal(hs, []string{"A", target[0]}) {
				t.Errorf("%s held by %v, want A and %s", it.Path, hs, target[0])
			}
		}
		for n, r := range rs {
			if got := r.f.fetched(); !slices.Equal(got, want[n]) {
				t.Errorf("%s fetched %v, want %v", n, got, want[n])
			}
		}
		lost, other := "B", "C"
		if len(want["B"]) == 0 {
			lost, other = "C", "B"
		}
		rs[lost].stop()
		m.Apply(t, &scheduler.NodeLost{Time: time.Now(), Node: lost})
		synctest.Wait()
		// A change right after a look at the state waits for MinInterval.
		if got := rs[other].f.fetched(); len(got) != len(want[other]) {
			t.Errorf("%s fetched %d items at once after the change, want it to wait", other, len(got))
		}
		time.Sleep(DefaultMinInterval)
		synctest.Wait()
		for _, it := range items {
			if hs := m.holders(it.Path); !slices.Equal(hs, []string{"A", other}) {
				t.Errorf("after %s was lost, %s held by %v, want A and %s", lost, it.Path, hs, other)
			}
		}
		if got := rs[other].f.fetched(); len(got) != len(items) {
			t.Errorf("%s fetched %d items, want all %d", other, len(got), len(items))
		}
	})
}

// TestRunBacksOff makes the copy of an item fail, by its fetch or its
// commit, and checks that the replicator tries again only after a back-off
// that doubles, then succeeds once the failure is gone and stops trying.
func TestRunBacksOff(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fetch bool // the fetch fails; else the commit does
	}{
		{"fetch fails", true},
		{"commit fails", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { backOff(t, tc.fetch) })
		})
	}
}

func backOff(t *testing.T, fetchFails bool) {
	m := newMesh(t, "A", "B")
	x := item("x")
	m.hold(t, "A", x)
	f := &fetcher{fail: fetchFails}
	app := &flakyApplier{next: m.Applier}
	app.fail.Store(!fetchFails)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	b := start(t, m, "B", func(c *Config) { c.Fetcher, c.Applier, c.Tick = f, app, tick.C })
	begin := time.Now()
	// Attempts at 0, then after 5, 10 and 20 s more: at 5, 15 and 35 s.
	for _, step := range []struct {
		at       time.Duration
		attempts int
	}{
		{0, 1}, {4500 * time.Millisecond, 1}, {5500 * time.Millisecond, 2},
		{14500 * time.Millisecond, 2}, {15500 * time.Millisecond, 3}, {34 * time.Second, 3},
	} {
		time.Sleep(time.Until(begin.Add(step.at)))
		synctest.Wait()
		if got := len(f.fetched()); got != step.attempts {
			t.Fatalf("after %s: %d fetches, want %d", step.at, got, step.attempts)
		}
		if got := b.r.Backlog(); got != 1 {
			t.Fatalf("after %s: backlog %d, want the 1 item without its copy", step.at, got)
		}
	}
	f.setFail(false)
	app.fail.Store(false)
	time.Sleep(time.Until(begin.Add(36 * time.Second)))
	synctest.Wait()
	if hs := m.holders(x.Path); !slices.Equal(hs, []string{"A", "B"}) {
		t.Fatalf("after the failure ended: %s held by %v, want A and B", x.Path, hs)
	}
	time.Sleep(10 * time.Minute)
	synctest.Wait()
	if got := len(f.fetched()); got != 4 {
		t.Errorf("%d fetches in the end, want 4: an item held twice is not fetched again", got)
	}
	if got := b.r.Backlog(); got != 0 {
		t.Errorf("backlog %d once the item has its copy, want 0", got)
	}
}

// TestOneCopyDisables checks that Copies 1 copies nothing and that Run
// still returns when its context ends.
func TestOneCopyDisables(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMesh(t, "A", "B")
		m.hold(t, "A", item("x"))
		s := start(t, m, "B", func(c *Config) { c.Copies = 1 })
		synctest.Wait()
		if got := s.f.fetched(); len(got) > 0 {
			t.Errorf("fetched %v with one copy wanted", got)
		}
		s.stop()
		if err := <-s.done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run after cancel: %v", err)
		}
		s.done <- nil // for the cleanup
	})
}

func TestNewRejects(t *testing.T) {
	m := newMesh(t)
	ok := Config{Node: "A", FSM: m.FSM, Applier: m.Applier, Fetcher: &fetcher{}}
	for _, tc := range []struct {
		name string
		edit func(*Config)
	}{
		{"no node", func(c *Config) { c.Node = "" }},
		{"no FSM", func(c *Config) { c.FSM = nil }},
		{"no applier", func(c *Config) { c.Applier = nil }},
		{"no fetcher", func(c *Config) { c.Fetcher = nil }},
		{"negative copies", func(c *Config) { c.Copies = -1 }},
		{"negative batch", func(c *Config) { c.Batch = -1 }},
		{"negative interval", func(c *Config) { c.MinInterval = -time.Second }},
		{"negative takeover", func(c *Config) { c.Takeover = -time.Second }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			if _, err := New(c); !errors.Is(err, ErrConfig) {
				t.Errorf("New: %v, want ErrConfig", err)
			}
		})
	}
	r, err := New(ok)
	if err != nil {
		t.Fatalf("New with a full config: %v", err)
	}
	if r.cfg.Takeover != DefaultTakeover {
		t.Errorf("Takeover 0 became %v, want DefaultTakeover", r.cfg.Takeover)
	}
}
