package scheduler

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// The property tests drive a state with random command sequences over a small
// universe (4 nodes, 14 derivations in a random DAG over two systems) and check
// the invariants after every command.

const aarch = "aarch64-linux"

// universe is the fixed world one property run draws commands from.
type universe struct {
	views   []NodeView // the views of the latest plan drawn
	nodes   []*NodeJoined
	drvs    []Derivation
	sources []string
	planned bool // the last drawn command is a plan from Plan
}

func drawUniverse(t *rapid.T) *universe {
	u := &universe{sources: []string{outPath("src-0"), outPath("src-1")}}
	for i := range 4 {
		systems := rapid.SampledFrom([][]string{{x86}, {aarch}, {x86, aarch}}).Draw(t, "systems")
		var feats []string
		if rapid.Bool().Draw(t, "kvm") {
			feats = []string{"kvm"}
		}
		u.nodes = append(u.nodes, &NodeJoined{Node: fmt.Sprintf("n%d", i), Key: "k", Systems: systems,
			Features: feats, MaxBuilds: rapid.IntRange(1, 3).Draw(t, "max")})
	}
	for i := range 14 {
		var ins []string
		for j := range i {
			if rapid.IntRange(0, 4).Draw(t, "edge") == 0 {
				ins = append(ins, fmt.Sprintf("d%d", j))
			}
		}
		d := drv(fmt.Sprintf("d%d", i), rapid.SampledFrom([]string{x86, aarch}).Draw(t, "system"), ins...)
		if rapid.IntRange(0, 5).Draw(t, "needs-kvm") == 0 {
			d.Features = []string{"kvm"}
		}
		if rapid.Bool().Draw(t, "has-source") {
			d.Sources = []string{u.sources[i%2]}
		}
		u.drvs = append(u.drvs, d)
	}
	return u
}

// closure returns the derivations up to index i that i needs, inputs first.
func (u *universe) closure(i int) []Derivation {
	need := make([]bool, len(u.drvs))
	need[i] = true
	for j := i; j >= 0; j-- {
		if !need[j] {
			continue
		}
		for _, in := range u.drvs[j].Inputs {
			for k := range j {
				if u.drvs[k].Path == in.Drv {
					need[k] = true
				}
			}
		}
	}
	var out []Derivation
	for j, n := range need {
		if n {
			out = append(out, u.drvs[j])
		}
	}
	return out
}

// drawCommand draws the next command, often one that is likely valid.
// fromPlan is true for an Allocate made by Plan, which must always verify.
func (u *universe) drawCommand(t *rapid.T, s *State, now time.Time) (c Command, fromPlan bool) {
	u.planned = false
	c = u.drawAny(t, s, now)
	return c, u.planned
}

func (u *universe) drawAny(t *rapid.T, s *State, now time.Time) Command {
	node := rapid.SampledFrom(u.nodes).Draw(t, "node").Node
	build := BuildID(rapid.IntRange(1, max(s.NumBuilds(), 1)).Draw(t, "build"))
	kind := rapid.IntRange(0, 12).Draw(t, "kind")
	if running := runningBuilds(s); kind >= 5 && kind <= 7 && len(running) > 0 && rapid.IntRange(0, 4).Draw(t, "pick-running") > 0 {
		build = rapid.SampledFrom(running).Draw(t, "running")
	}
	switch kind {
	case 0:
		nj := *rapid.SampledFrom(u.nodes).Draw(t, "joining")
		nj.Time = now
		return &nj
	case 1:
		c := &Submit{Time: now, Priority: rapid.Int32Range(0, 3).Draw(t, "prio"),
			Derivations: u.closure(rapid.IntRange(0, len(u.drvs)-1).Draw(t, "root"))}
		if rapid.IntRange(0, 5).Draw(t, "force") == 0 {
			c.Derivations[len(c.Derivations)-1].Force = true
		}
		return c
	case 2, 3:
		views := make([]NodeView, len(u.nodes))
		for i, n := range u.nodes {
			// Free space around the node's minimum, often below it.
			views[i] = NodeView{ID: n.Node, MinFree: 5 << 30,
				FreeDisk: uint64(rapid.IntRange(0, 10).Draw(t, "free-gib")) << 30}
		}
		u.views = views
		u.planned = true
		return &Allocate{Time: now, Allocations: s.Plan(views, now, PlanOptions{})}
	case 4:
		return &Allocate{Time: now, Allocations: []Allocation{{build, node}}}
	case 5:
		b, _ := s.Build(build)
		return &Started{Time: now, Build: build, Node: b.Node}
	case 6:
		b, _ := s.Build(build)
		var outs []Item
		for _, o := range b.Outputs {
			outs = append(outs, item(o.Path))
		}
		return &Succeeded{Time: now, Build: build, Node: b.Node, Outputs: outs,
			TakeNext: rapid.Bool().Draw(t, "take-next")}
	case 7:
		b, _ := s.Build(build)
		return &Failed{Time: now, Build: build, Node: b.Node, Reason: Reason(rapid.IntRange(1, 5).Draw(t, "reason"))}
	case 8:
		return &Cancel{Time: now, Builds: []BuildID{build}}
	case 9:
		return &Retry{Time: now, Builds: []BuildID{build}}
	case 10:
		if rapid.Bool().Draw(t, "left") {
			return &NodeLeft{Time: now, Node: node}
		}
		return &NodeLost{Time: now, Node: node}
	case 12:
		ago := time.Duration(rapid.IntRange(0, 1800).Draw(t, "compact-ago")) * time.Second
		return &Compact{Time: now, Before: now.Add(-ago), Max: rapid.IntRange(1, 6).Draw(t, "compact-max")}
	default:
		paths := append([]string{outPath(fmt.Sprintf("d%d", rapid.IntRange(0, len(u.drvs)-1).Draw(t, "out")))}, u.sources...)
		p := rapid.SampledFrom(paths).Draw(t, "path")
		if rapid.IntRange(0, 3).Draw(t, "remove") == 0 {
			return &HolderRemoved{Time: now, Node: node, Paths: []string{p}}
		}
		return &HolderAdded{Time: now, Node: node, Items: []Item{item(p)}}
	}
}

// runningBuilds lists the builds allocated or running, for commands that
// make sense only for them.
func runningBuilds(s *State) []BuildID {
	var out []BuildID
	for i, b := range s.builds {
		if b != nil && b.node != 0 {
			out = append(out, BuildID(i+1))
		}
	}
	return out
}

func TestProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		u := drawUniverse(t)
		s := NewState()
		var log [][]byte
		now := t0
		for range rapid.IntRange(1, 120).Draw(t, "steps") {
			now = now.Add(time.Duration(rapid.IntRange(0, 120).Draw(t, "seconds")) * time.Second)
			c, fromPlan := u.drawCommand(t, s, now)
			if fromPlan {
				checkPlanDisk(t, u.views, c.(*Allocate))
			}
			cmd := Encode(c)
			log = append(log, cmd)
			before, _ := s.MarshalBinary()
			pre, err := UnmarshalState(before)
			if err != nil {
				t.Fatalf("restore before %T: %v", c, err)
			}
			_, err = s.Apply(cmd)
			if err != nil {
				if after, _ := s.MarshalBinary(); !bytes.Equal(before, after) {
					t.Fatalf("rejected %T (%v) changed the state", c, err)
				}
				if fromPlan {
					t.Fatalf("a plan from Plan was rejected: %v", err)
				}
				continue
			}
			checkTransition(t, pre, s, c)
			checkInvariants(t, s)
		}
		checkSnapshotAndReplay(t, s, log)
	})
}

// checkPlanDisk checks that a plan allocates nothing to a node whose store's
// disk is below its minimum free space.
func checkPlanDisk(t *rapid.T, views []NodeView, plan *Allocate) {
	for _, a := range plan.Allocations {
		for _, v := range views {
			if v.ID == a.Node && v.FreeDisk < v.MinFree {
				t.Fatalf("build %d allocated to %s with %d bytes free, min-free %d", a.Build, a.Node, v.FreeDisk, v.MinFree)
			}
		}
	}
}

// checkTransition checks what one accepted command did, against the state
// before it.
func checkTransition(t *rapid.T, pre, s *State, c Command) {
	switch c := c.(type) {
	case *Allocate:
		seen := map[BuildID]bool{}
		for _, a := range c.Allocations {
			if seen[a.Build] {
				t.Fatalf("build %d allocated twice in one command", a.Build)
			}
			seen[a.Build] = true
			b := pre.builds[a.Build-1]
			m := pre.nodes[pre.byNode[a.Node]]
			if b.state != BuildQueued {
				t.Fatalf("build %d allocated while %s", a.Build, b.state)
			}
			if m.status != memberActive || !containsSorted(m.systems, b.system) ||
				!subsetSorted(pre.featureSets[b.features], m.features) {
				t.Fatalf("build %d allocated to ineligible node %s", a.Build, a.Node)
			}
			if !pre.inputsAvailable(b) {
				t.Fatalf("build %d allocated before its inputs were available", a.Build)
			}
		}
	case *Compact:
		checkCompact(t, pre, s, c)
	case *Succeeded:
		checkTakeNext(t, pre, s, c)
	case *NodeLost, *NodeLeft:
		if len(s.builds) != len(pre.builds) {
			t.Fatalf("node loss changed the number of builds")
		}
		for i, b := range pre.builds {
			if b == nil || b.node == 0 {
				continue
			}
			if pre.nodes[b.node-1].id != nodeOf(c) {
				continue
			}
			if after := s.builds[i]; after.node != 0 || (after.state != BuildQueued && after.state != BuildBlocked &&
				after.state != BuildFailed && after.state != BuildFailedDependency) {
				t.Fatalf("build %d of lost node is %s on node %d", i+1, after.state, after.node)
			}
		}
	}
}

// checkTakeNext: a Succeeded starts at most one build, only with TakeNext,
// only a dependent of the build that its success made ready, on the node
// that built it, which can build it.
func checkTakeNext(t *rapid.T, pre, s *State, c *Succeeded) {
	taken := 0
	for i, b := range pre.builds {
		if b == nil || b.state != BuildQueued || s.builds[i].state == BuildQueued {
			continue
		}
		after := s.builds[i]
		if after.state != BuildRunning {
			continue // e.g. a success that recovered a failed dependency
		}
		taken++
		m := s.nodes[after.node-1]
		switch {
		case !c.TakeNext:
			t.Fatalf("a plain Succeeded started build %d", i+1)
		case m.id != c.Node:
			t.Fatalf("build %d taken by %s after a success on %s", i+1, m.id, c.Node)
		case !containsSorted(pre.builds[c.Build-1].dependents, uint32(i)):
			t.Fatalf("build %d taken, but it is no dependent of build %d", i+1, c.Build)
		case !s.inputsAvailable(after) || !containsSorted(m.systems, after.system):
			t.Fatalf("build %d taken by %s, which cannot run it yet", i+1, m.id)
		}
	}
	if taken > 1 {
		t.Fatalf("one success started %d builds", taken)
	}
}

func nodeOf(c Command) string {
	switch c := c.(type) {
	case *NodeLost:
		return c.Node
	case *NodeLeft:
		return c.Node
	}
	return ""
}

// checkCompact checks what an accepted Compact dropped: only builds that
// were done and finished before its cutoff, at most Max, and the items of
// their outputs are still there, as they were.
func checkCompact(t *rapid.T, pre, s *State, c *Compact) {
	n := 0
	for i, b := range pre.builds {
		if b == nil || s.builds[i] != nil {
			continue
		}
		n++
		if !b.state.Done() || b.finished >= c.Before.UnixNano() {
			t.Fatalf("compacted build %d was %s, finished %d, cutoff %d", i+1, b.state, b.finished, c.Before.UnixNano())
		}
		for _, o := range b.outputs {
			path := pre.paths[o.path].path
			was, held := pre.Item(path)
			if now, ok := s.Item(path); ok != held || held && !slicesEqual(now.Holders, was.Holders) {
				t.Fatalf("compacting build %d changed item %s", i+1, path)
			}
		}
	}
	if n > c.Max {
		t.Fatalf("compacted %d builds, max %d", n, c.Max)
	}
}

func slicesEqual(a, b []string) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

// checkCompactedRefs checks that nothing the state keeps refers to a
// compacted build: no cause, producer, failed-output entry or derivation.
func checkCompactedRefs(t *rapid.T, s *State) {
	gone := func(i int32) bool { return i >= 0 && s.builds[i] == nil }
	for i, b := range s.builds {
		if b != nil && gone(b.cause) {
			t.Fatalf("build %d's cause %d was compacted", i+1, b.cause+1)
		}
	}
	for _, p := range s.paths {
		if gone(p.producer) {
			t.Fatalf("path %s's producer %d was compacted", p.path, p.producer+1)
		}
	}
	for p, bi := range s.failed {
		if gone(int32(bi)) {
			t.Fatalf("failed output %s names compacted build %d", s.paths[p].path, bi+1)
		}
	}
	for drv, bi := range s.byDrv {
		if gone(int32(bi)) {
			t.Fatalf("derivation %s names compacted build %d", drv, bi+1)
		}
	}
}

// checkInvariants checks the state after every command.
func checkInvariants(t *rapid.T, s *State) {
	active := make([]int, len(s.nodes))
	checkCompactedRefs(t, s)
	for i, b := range s.builds {
		if b == nil {
			continue
		}
		if cause, failed := s.failedInput(b); failed && (b.state == BuildQueued || b.state == BuildBlocked) {
			t.Fatalf("build %d is %s but its input build %d is %s", i+1, b.state, cause+1, s.builds[cause].state)
		}
		running := b.state == BuildAllocated || b.state == BuildRunning
		if running != (b.node != 0) {
			t.Fatalf("build %d is %s with node %d", i+1, b.state, b.node)
		}
		if b.node == 0 {
			continue
		}
		active[b.node-1]++
		if m := s.nodes[b.node-1]; m.status != memberActive {
			t.Fatalf("build %d is %s on %s node %s", i+1, b.state, memberNames[m.status], m.id)
		}
	}
	for i, m := range s.nodes {
		if m.active != active[i] || m.active > m.maxBuilds {
			t.Fatalf("node %s counts %d builds, has %d, max %d", m.id, m.active, active[i], m.maxBuilds)
		}
	}
}

// checkSnapshotAndReplay: snapshot → restore gives the same state, and the
// same log replayed on a fresh state gives the same state.
func checkSnapshotAndReplay(t *rapid.T, s *State, log [][]byte) {
	want, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	restored, err := UnmarshalState(want)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if got, _ := restored.MarshalBinary(); !bytes.Equal(got, want) {
		t.Fatal("snapshot → restore changed the state")
	}
	replay := NewState()
	for _, cmd := range log {
		_, _ = replay.Apply(cmd)
	}
	if got, _ := replay.MarshalBinary(); !bytes.Equal(got, want) {
		t.Fatal("replaying the log gave a different state")
	}
	// The restored state must keep working like the original.
	for _, cmd := range log[max(0, len(log)-10):] {
		_, err1 := restored.Apply(cmd)
		_, err2 := s.Apply(cmd)
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("restored and original states disagree: %v / %v", err1, err2)
		}
	}
	a, _ := restored.MarshalBinary()
	b, _ := s.MarshalBinary()
	if !bytes.Equal(a, b) {
		t.Fatal("restored state diverged from the original")
	}
}
