package gc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/queuetest"
	"github.com/tbfg/tbfg-node/scheduler"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/local"
)

// fixture is a real store of node "me" with a replicated state beside it.
type fixture struct {
	st    *local.Store
	q     *queuetest.Queue
	paths map[string]store.Path // name → path
}

// newFixture adds text items to a store registered an hour ago:
//
//	fetched  valid here, recorded nowhere
//	spare    recorded for me, x and y
//	last     recorded for me and x only
//	ref      recorded nowhere, referred to by last
//	needed   recorded nowhere, a source of a queued build
func newFixture(t *testing.T) *fixture {
	t.Helper()
	old := time.Now().Add(-time.Hour)
	st, err := local.Open(t.TempDir()+"/store", store.GuixDir, local.WithClock(func() time.Time { return old }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{st: st, q: queuetest.New(t, nil), paths: map[string]store.Path{}}
	for _, m := range []string{"me", "x", "y"} {
		f.q.Join(t, m, "key-"+m, 1)
	}
	f.add(t, "fetched")
	f.add(t, "spare")
	f.add(t, "ref")
	f.add(t, "last", f.paths["ref"])
	f.add(t, "needed")
	f.hold(t, "spare", "me", "x", "y")
	f.hold(t, "last", "me", "x")
	f.q.Apply(t, &scheduler.Submit{Time: time.Now(), Node: "x", Derivations: []scheduler.Derivation{{
		Path: "/gnu/store/00000000000000000000000000000000-build.drv", System: "x86_64-linux",
		Outputs: []scheduler.Output{{Name: "out", Path: "/gnu/store/11111111111111111111111111111111-build"}},
		Sources: []string{string(f.paths["needed"])}}}})
	return f
}

func (f *fixture) add(t *testing.T, name string, refs ...store.Path) {
	t.Helper()
	p, err := f.st.AddText(context.Background(), name, []byte("contents of "+name), refs)
	if err != nil {
		t.Fatal(err)
	}
	f.paths[name] = p
}

// hold records nodes as holders of the item name.
func (f *fixture) hold(t *testing.T, name string, nodes ...string) {
	t.Helper()
	info, err := f.st.Query(f.paths[name])
	if err != nil {
		t.Fatal(err)
	}
	it := scheduler.Item{Path: string(info.Path), NarHash: info.NarHash(), NarSize: uint64(info.Nar.Size),
		Narinfo: "StorePath: " + string(info.Path) + "\n", Signature: "sig"}
	for _, r := range info.References {
		it.References = append(it.References, string(r))
	}
	for _, n := range nodes {
		f.q.Apply(t, &scheduler.HolderAdded{Time: time.Now(), Node: n, Items: []scheduler.Item{it}})
	}
}

func (f *fixture) collector(t *testing.T, cfg Config) *Collector {
	t.Helper()
	cfg.Node, cfg.FSM, cfg.Applier, cfg.Store = "me", f.q.FSM, f.q.Applier, f.st
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// want lists the names Collect should remove: fetched always, spare unless
// me is one of its two keepers.
func (f *fixture) want() []string {
	want := []string{"fetched"}
	if !keeper(string(f.paths["spare"]), []string{"me", "x", "y"}, "me", 2) {
		want = append(want, "spare")
	}
	return want
}

func (f *fixture) names(rs []Removal) []string {
	var out []string
	for _, r := range rs {
		for name, p := range f.paths {
			if string(p) == r.Path {
				out = append(out, name)
			}
		}
	}
	return out
}

// TestCollect checks that a collection over a real store removes what may
// go, commits the removal of recorded copies first, keeps the rest valid,
// and that a dry run removes nothing.
func TestCollect(t *testing.T) {
	f := newFixture(t)
	c := f.collector(t, Config{Replicas: 2, StoreMax: 1})
	dry, err := c.Collect(context.Background(), Request{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := f.names(dry.Removed), f.want(); !slices.Equal(got, want) {
		t.Fatalf("dry run would remove %v, want %v", got, want)
	}
	for name, p := range f.paths {
		if ok, _ := f.st.IsValid(p); !ok {
			t.Fatalf("dry run removed %s", name)
		}
	}
	rep, err := c.Collect(context.Background(), Request{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := f.names(rep.Removed), f.want(); !slices.Equal(got, want) {
		t.Fatalf("removed %v, want %v", got, want)
	}
	if rep.Freed != dry.Freed || rep.Want <= 0 || rep.StoreSize < rep.Freed {
		t.Errorf("report %+v, dry run %+v", rep, dry)
	}
	for name, p := range f.paths {
		gone := slices.Contains(f.want(), name)
		if ok, _ := f.st.IsValid(p); ok == gone {
			t.Errorf("%s: valid %v after the collection", name, ok)
		}
		f.q.FSM.Read(func(s *scheduler.State) {
			it, _ := s.Item(string(p))
			if held := slices.Contains(it.Holders, "me"); held && gone {
				t.Errorf("%s removed but still recorded as held by me", name)
			}
		})
	}
}

// TestCollectWithinBounds checks that a store within its bounds is left
// alone unless asked to free space, and that fresh items stay.
func TestCollectWithinBounds(t *testing.T) {
	f := newFixture(t)
	c := f.collector(t, Config{Replicas: 2, StoreMax: 1 << 30, MinFree: 100,
		DiskFree: func() (int64, error) { return 1000, nil }})
	rep, err := c.Collect(context.Background(), Request{})
	if err != nil || len(rep.Removed) != 0 || rep.Want > 0 {
		t.Fatalf("within bounds: %+v, %v", rep, err)
	}
	rep, err = c.Collect(context.Background(), Request{Free: 1})
	if err != nil || len(rep.Removed) != 1 || f.names(rep.Removed)[0] != "fetched" {
		t.Fatalf("free 1 byte: removed %v, %v; want the fetched item", f.names(rep.Removed), err)
	}
	c = f.collector(t, Config{Replicas: 2, Grace: 2 * time.Hour})
	if rep, err := c.Collect(context.Background(), Request{Free: 1 << 20}); err != nil || len(rep.Removed) != 0 {
		t.Fatalf("within the grace period: removed %v, %v", f.names(rep.Removed), err)
	}
	c = f.collector(t, Config{Replicas: 2, MinFree: 100,
		DiskFree: func() (int64, error) { return 0, fmt.Errorf("statfs: broken") }})
	if _, err := c.Collect(context.Background(), Request{}); err == nil {
		t.Fatal("no error when the free space cannot be read")
	}
}

// TestRunCollectsOnTick checks that the background loop collects on each
// tick and stops with its context.
func TestRunCollectsOnTick(t *testing.T) {
	f := newFixture(t)
	tick := make(chan time.Time)
	c := f.collector(t, Config{Replicas: 2, StoreMax: 1, Tick: tick})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	tick <- time.Now()
	tick <- time.Now() // taken once the first collection is over
	if ok, _ := f.st.IsValid(f.paths["fetched"]); ok {
		t.Error("the fetched item is still valid after a tick")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v, want context.Canceled", err)
	}
}
