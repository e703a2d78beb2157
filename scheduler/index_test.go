package scheduler

import (
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// TestIndexMatchesRecount drives random command sequences (the universe of
// the property tests) and checks after every command that the incremental
// index equals a full recount, that pages equal a filter over every build,
// and that the command's Change names every build whose state or node
// changed. At the end, the index rebuilt by a snapshot restore must equal the
// incremental one.
func TestIndexMatchesRecount(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		u := drawUniverse(t)
		s := NewState()
		now := t0
		for range rapid.IntRange(1, 100).Draw(t, "steps") {
			now = now.Add(time.Duration(rapid.IntRange(0, 900).Draw(t, "seconds")) * time.Second)
			c, _ := u.drawCommand(t, s, now)
			before := snapshotBuilds(s)
			if _, err := s.Apply(Encode(c)); err != nil {
				if len(s.ix.touched) != 0 {
					t.Fatalf("rejected %T touched %d builds", c, len(s.ix.touched))
				}
				continue
			}
			checkChange(t, s, before, s.takeChange(1), c)
			checkIndex(t, s)
			checkPages(t, s, u)
		}
		data, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		restored, err := UnmarshalState(data)
		if err != nil {
			t.Fatal(err)
		}
		checkIndex(t, restored)
		if got, want := restored.QueueCounts(), s.QueueCounts(); !slices.Equal(got, want) {
			t.Fatalf("restored counts %v, incremental %v", got, want)
		}
	})
}

// buildBrief is what a Change must report when it differs.
type buildBrief struct {
	state BuildState
	last  uint16
}

func snapshotBuilds(s *State) []buildBrief {
	out := make([]buildBrief, len(s.builds))
	for i, b := range s.builds {
		if b != nil {
			out[i] = buildBrief{b.state, b.last}
		}
	}
	return out
}

// checkChange checks that ch lists every build that is new or whose state or
// node changed, and the member of a membership command.
func checkChange(t *rapid.T, s *State, before []buildBrief, ch Change, c Command) {
	for i, b := range s.builds {
		now := buildBrief{}
		if b != nil {
			now = buildBrief{b.state, b.last}
		}
		changed := i >= len(before) || before[i] != now
		if changed && !slices.Contains(ch.Builds, BuildID(i+1)) && !ch.Reset {
			t.Fatalf("%T changed build %d (%v → %v) but the change lists %v", c, i+1, before[min(i, len(before)-1)], now, ch.Builds)
		}
	}
	if !slices.IsSorted(ch.Builds) {
		t.Fatalf("change builds not sorted: %v", ch.Builds)
	}
	switch c := c.(type) {
	case *NodeJoined:
		if !slices.Contains(ch.Members, c.Node) {
			t.Fatalf("NodeJoined %s: change members %v", c.Node, ch.Members)
		}
	case *NodeLost:
		if !slices.Contains(ch.Members, c.Node) {
			t.Fatalf("NodeLost %s: change members %v", c.Node, ch.Members)
		}
	case *NodeLeft:
		if !slices.Contains(ch.Members, c.Node) {
			t.Fatalf("NodeLeft %s: change members %v", c.Node, ch.Members)
		}
	}
}

// checkIndex compares the index with a recount over every build.
func checkIndex(t *rapid.T, s *State) {
	counts := map[QueueCount]int{}
	for i, b := range s.builds {
		bi := uint32(i)
		if b == nil {
			checkCompactedIndex(t, s, bi)
			continue
		}
		counts[QueueCount{System: s.names[b.system], State: b.state}]++
		for st := range numStates {
			if s.ix.byState[st].has(bi) != (BuildState(st) == b.state) {
				t.Fatalf("build %d is %s; state index %s says %v", i+1, b.state, BuildState(st), !(BuildState(st) == b.state))
			}
		}
		for n := range s.ix.byNode {
			if s.ix.byNode[n].has(bi) != (b.last == uint16(n+1)) {
				t.Fatalf("build %d last node %d; node index %d disagrees", i+1, b.last, n+1)
			}
		}
		if !s.ix.bySystem[b.system].builds.has(bi) {
			t.Fatalf("build %d missing from its system's index", i+1)
		}
	}
	var want []QueueCount
	for k, n := range counts {
		k.Builds = n
		want = append(want, k)
	}
	slices.SortFunc(want, func(a, b QueueCount) int {
		if a.System != b.System {
			if a.System < b.System {
				return -1
			}
			return 1
		}
		return int(a.State) - int(b.State)
	})
	if got := s.QueueCounts(); !slices.Equal(got, want) {
		t.Fatalf("incremental counts %v, recount %v", got, want)
	}
	for st, n := range s.Counts() {
		if got := s.CountBuilds(BuildFilter{States: []BuildState{st}}); got != n {
			t.Fatalf("CountBuilds(%s) = %d, recount %d", st, got, n)
		}
	}
}

// checkCompactedIndex checks that compacted build bi is in no index but the
// compacted set.
func checkCompactedIndex(t *rapid.T, s *State, bi uint32) {
	if !s.ix.compacted.has(bi) {
		t.Fatalf("compacted build %d not marked compacted", bi+1)
	}
	for st := range numStates {
		if s.ix.byState[st].has(bi) {
			t.Fatalf("compacted build %d still indexed as %s", bi+1, BuildState(st))
		}
	}
	for n := range s.ix.byNode {
		if s.ix.byNode[n].has(bi) {
			t.Fatalf("compacted build %d still indexed under node %d", bi+1, n+1)
		}
	}
	for _, si := range s.ix.bySystem {
		if si.builds.has(bi) {
			t.Fatalf("compacted build %d still indexed under its system", bi+1)
		}
	}
	if slices.Contains(s.ix.recent, bi) {
		t.Fatalf("compacted build %d still among the recent builds", bi+1)
	}
}

// checkPages compares random pages with a filter over every build.
func checkPages(t *rapid.T, s *State, u *universe) {
	f := BuildFilter{}
	if rapid.Bool().Draw(t, "filter-state") {
		f.States = []BuildState{BuildState(rapid.IntRange(1, numStates-1).Draw(t, "state"))}
		if rapid.Bool().Draw(t, "second-state") {
			f.States = append(f.States, BuildState(rapid.IntRange(1, numStates-1).Draw(t, "state2")))
		}
	}
	if rapid.Bool().Draw(t, "filter-system") {
		f.System = rapid.SampledFrom([]string{x86, aarch, "riscv64-linux"}).Draw(t, "system")
	}
	if rapid.Bool().Draw(t, "filter-node") {
		f.Node = rapid.SampledFrom(append([]string{"nobody"}, u.nodes[0].Node, u.nodes[1].Node)).Draw(t, "fnode")
	}
	var all []BuildID
	for i := range s.builds {
		if s.builds[i] == nil {
			continue
		}
		b := s.info(uint32(i))
		if (len(f.States) == 0 || slices.Contains(f.States, b.State)) && (f.System == "" || b.System == f.System) &&
			(f.Node == "" || b.LastNode == f.Node) {
			all = append(all, b.ID)
		}
	}
	if got := s.CountBuilds(f); got != len(all) {
		t.Fatalf("CountBuilds(%+v) = %d, want %d", f, got, len(all))
	}
	limit := rapid.IntRange(1, 5).Draw(t, "limit")
	var newest, oldest []BuildID
	for p, n := s.BuildsNewest(f, 0, limit), 0; ; p, n = s.BuildsNewest(f, p.Next, limit), n+1 {
		for _, b := range p.Builds {
			newest = append(newest, b.ID)
		}
		if p.Next == 0 || n > len(s.builds) {
			break
		}
	}
	for p, n := s.BuildsOldest(f, 0, limit), 0; ; p, n = s.BuildsOldest(f, p.Next, limit), n+1 {
		for _, b := range p.Builds {
			oldest = append(oldest, b.ID)
		}
		if p.Next == 0 || n > len(s.builds) {
			break
		}
	}
	if !slices.Equal(oldest, all) {
		t.Fatalf("oldest-first pages of %+v: %v, want %v", f, oldest, all)
	}
	slices.Reverse(all)
	if !slices.Equal(newest, all) {
		t.Fatalf("newest-first pages of %+v: %v, want %v", f, newest, all)
	}
}

func TestAttemptsHistory(t *testing.T) {
	s := NewState()
	mustApply(t, s, joined("a", 2, x86))
	mustApply(t, s, joined("b", 2, x86))
	ids := submit(t, s, drv("hello", x86))
	id := ids[0]
	alloc := func(node string, d time.Duration) {
		mustApply(t, s, &Allocate{Time: at(d), Allocations: []Allocation{{Build: id, Node: node}}})
		mustApply(t, s, &Started{Time: at(d + time.Second), Build: id, Node: node})
	}
	alloc("a", time.Minute)
	mustApply(t, s, &Failed{Time: at(2 * time.Minute), Build: id, Node: "a", Reason: ReasonMissingInput, Message: "no input"})
	alloc("b", time.Hour)
	mustApply(t, s, &Failed{Time: at(time.Hour + time.Minute), Build: id, Node: "b", Reason: ReasonBuildError, Message: "exit 1"})
	mustApply(t, s, &Retry{Time: at(2 * time.Hour), Builds: []BuildID{id}})
	alloc("a", 3*time.Hour)

	got := s.Attempts(id)
	want := []Attempt{
		{Node: "a", Allocated: at(time.Minute), Started: at(time.Minute + time.Second), Ended: at(2 * time.Minute),
			State: BuildQueued, Reason: ReasonMissingInput, Message: "no input"},
		{Node: "b", Allocated: at(time.Hour), Started: at(time.Hour + time.Second), Ended: at(time.Hour + time.Minute),
			State: BuildFailed, Reason: ReasonBuildError, Message: "exit 1"},
		{Node: "a", Allocated: at(3 * time.Hour), Started: at(3*time.Hour + time.Second), State: BuildRunning},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("attempts:\n got %+v\nwant %+v", got, want)
	}
	b, _ := s.Build(id)
	mustApply(t, s, &Succeeded{Time: at(4 * time.Hour), Build: id, Node: "a", Outputs: []Item{item(b.Outputs[0].Path)}})
	got = s.Attempts(id)
	if len(got) != 3 || got[2].State != BuildSucceeded || !got[2].Ended.Equal(at(4*time.Hour)) {
		t.Fatalf("after success: %+v", got)
	}
	// A restored state knows only the latest attempt.
	data, _ := s.MarshalBinary()
	r, err := UnmarshalState(data)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Attempts(id); len(got) != 1 || got[0] != s.Attempts(id)[2] {
		t.Fatalf("restored attempts: %+v", got)
	}
}

func TestFinishedRecentBlocked(t *testing.T) {
	s := NewState()
	mustApply(t, s, joined("a", 4, x86))
	ids := submit(t, s, drv("base", x86), drv("lib", x86, "base"), drv("app", x86, "lib"), drv("other", x86))
	base, lib, app, other := ids[0], ids[1], ids[2], ids[3]
	mustApply(t, s, &Allocate{Time: at(0), Allocations: []Allocation{{Build: base, Node: "a"}, {Build: other, Node: "a"}}})
	mustApply(t, s, &Failed{Time: at(90 * time.Minute), Build: base, Node: "a", Reason: ReasonBuildError})
	b, _ := s.Build(other)
	mustApply(t, s, &Succeeded{Time: at(150 * time.Minute), Build: other, Node: "a", Outputs: []Item{item(b.Outputs[0].Path)}})

	hours := s.FinishedPerHour(at(150*time.Minute), 3)
	var gotS, gotF []int
	for _, h := range hours {
		gotS, gotF = append(gotS, h.Succeeded), append(gotF, h.Failed)
	}
	// t0 is 03:04:05, so the failure at 04:34 and the success at 05:34 fall
	// in the second and third of the hours 03, 04 and 05.
	if !slices.Equal(gotS, []int{0, 0, 1}) || !slices.Equal(gotF, []int{0, 1, 0}) || hours[2].Hour.Hour() != 5 {
		t.Fatalf("per hour: %+v", hours)
	}
	var recent []BuildID
	for _, b := range s.RecentlyEnded(10) {
		recent = append(recent, b.ID)
	}
	if !slices.Equal(recent, []BuildID{other, base}) {
		t.Fatalf("recently ended %v, want %v", recent, []BuildID{other, base})
	}
	blocked, n := s.Blocked(base, 10, 100)
	if !slices.Equal(blocked, []BuildID{lib, app}) || n != 2 {
		t.Fatalf("blocked by base: %v (%d)", blocked, n)
	}
	if blocked, n := s.Blocked(base, 1, 1); len(blocked) != 1 || n != 1 {
		t.Fatalf("bounded blocked: %v (%d)", blocked, n)
	}
}
