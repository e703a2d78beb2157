package integration

import (
	"bytes"
	binenc "encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/drvgraph"
	"github.com/tbfg/tbfg-node/internal/nixtest"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/nar"
)

// benchEnv turns TestDependentBuildsVsNix on; it is a benchmark (it prints
// ratios, it never fails on time), too slow for every test run.
const benchEnv = "TBFG_BENCH"

// TestDependentBuildsVsNix is the mesh's cost per build against a local
// daemon, measured side by side in one run: chains of 30 trivial
// derivations, each reading its predecessor, built by Nix 2.8 alone
// (nix-store --realise in a chroot store) and by a three-host mesh (root
// namespace hosts, builtin executor, default Raft profile) through
// `submit --wait` on the leader's host; then 200 independent derivations,
// Nix with max-jobs equal to the mesh's total slots. It prints the ratio
// mesh/Nix of each run, their median and worst, and the median gaps of the
// build timeline. It fails only if a build fails or runs twice.
//
//	TBFG_BENCH=1 TBFG_BENCH_RUNS=6 go test -count=1 -v -run DependentBuildsVsNix ./integration/
func TestDependentBuildsVsNix(t *testing.T) {
	if os.Getenv(benchEnv) == "" {
		t.Skipf("a benchmark: set %s=1 to run it", benchEnv)
	}
	requireNamespaces(t)
	nixtest.Require(t)
	runs := 5
	if s := os.Getenv("TBFG_BENCH_RUNS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("TBFG_BENCH_RUNS=%q: want a positive number", s)
		}
		runs = n
	}
	const maxBuilds = 2
	c := newCluster(t,
		"--raft-profile", "default",
		"--gossip-interval", "1s",
		"--max-builds", strconv.Itoa(maxBuilds),
		"--system", nativeSystem(),
		"--log-level", "warn")
	hosts, ids, ok := formThree(t, c)
	if !ok {
		return
	}
	leader := leaderOf(t, hosts, ids)
	nix := nixtest.New(t, store.GuixDir)
	var chain []float64
	for i := range runs {
		nixTime := nixBuild(t, nix, drvgraph.Options{Chain: 30}, 1)
		meshTime, bs := meshBuild(t, leader, hosts, drvgraph.Options{Chain: 30})
		r := meshTime.Seconds() / nixTime.Seconds()
		chain = append(chain, r)
		t.Logf("chain of 30, run %d: Nix %v, mesh %v, mesh/Nix %.2f, %.1f ms added per build; timeline %s",
			i+1, nixTime.Round(time.Millisecond), meshTime.Round(time.Millisecond), r,
			float64((meshTime-nixTime).Microseconds())/30/1000, timelineGaps(bs, ids[leader]))
	}
	t.Logf("chains of 30: mesh/Nix median %.2f, worst %.2f over %d runs", median(chain), slices.Max(chain), runs)
	var wide []float64
	for i := range max(1, runs/2) {
		nixTime := nixBuild(t, nix, drvgraph.Options{Leaves: 200}, 3*maxBuilds)
		meshTime, _ := meshBuild(t, leader, hosts, drvgraph.Options{Leaves: 200})
		r := meshTime.Seconds() / nixTime.Seconds()
		wide = append(wide, r)
		t.Logf("200 independent, run %d: Nix (max-jobs %d) %v, mesh %v, mesh/Nix %.2f",
			i+1, 3*maxBuilds, nixTime.Round(time.Millisecond), meshTime.Round(time.Millisecond), r)
	}
	t.Logf("200 independent: mesh/Nix median %.2f, worst %.2f", median(wide), slices.Max(wide))
}

// median is the middle of xs (the mean of the two middles for an even
// count); xs is not changed.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// newBenchGraph makes a graph with a fresh tag and writes it into a new
// directory.
func newBenchGraph(t *testing.T, opts drvgraph.Options) (*drvgraph.Graph, string) {
	t.Helper()
	return newGraph(t, opts)
}

// nixBuild imports a fresh graph into Nix's store and returns how long
// nix-store --realise takes to build all of it with maxJobs.
func nixBuild(t *testing.T, n *nixtest.Nix, opts drvgraph.Options, maxJobs int) time.Duration {
	t.Helper()
	g, dir := newBenchGraph(t, opts)
	cmd := n.Cmd("nix-store", "--import")
	cmd.Stdin = bytes.NewReader(nixExport(t, dir, g))
	nixtest.Output(t, cmd)
	args := []string{"--realise", "--max-jobs", strconv.Itoa(maxJobs)}
	for _, p := range g.Order {
		args = append(args, string(p))
	}
	start := time.Now()
	nixtest.Output(t, n.Cmd("nix-store", args...))
	return time.Since(start)
}

// meshBuild submits a fresh graph with submit --wait on h and returns how
// long that took, and the builds as h lists them afterwards. It fails t if
// a build did not succeed or ran more than once.
func meshBuild(t *testing.T, h *host, hosts []*host, opts drvgraph.Options) (time.Duration, []buildJSON) {
	t.Helper()
	g, dir := newBenchGraph(t, opts)
	start := time.Now()
	out, err := h.cliLong(5*time.Minute, append([]string{"submit", "--wait"}, g.Files(dir)...)...)
	d := time.Since(start)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	bs, err := builds(h)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, p := range g.Order {
		want[string(p)] = true
	}
	var mine []buildJSON
	for _, b := range bs {
		if want[b.Derivation] {
			if b.Attempt != 1 {
				t.Errorf("build %d of %s: attempt %d, want 1 (built once)", b.ID, b.Derivation, b.Attempt)
			}
			mine = append(mine, b)
		}
	}
	if err := allSucceeded(mine, g); err != nil {
		t.Fatal(err)
	}
	// The node-local part of the timeline is on the node that ran each build.
	local := map[uint64]*buildTimeline{}
	for _, o := range hosts {
		obs, err := builds(o)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range obs {
			if b.Timeline != nil && b.Timeline.Seen != nil {
				local[b.ID] = b.Timeline
			}
		}
	}
	for i := range mine {
		if tl := local[mine[i].ID]; tl != nil {
			mine[i].Timeline = tl
		}
	}
	return d, mine
}

// timelineGaps summarises a chain's timeline: the median of each step
// across its builds, in milliseconds.
func timelineGaps(bs []buildJSON, leaderID string) string {
	nodes := map[string]int{}
	slices.SortFunc(bs, func(a, b buildJSON) int { return int(a.ID) - int(b.ID) })
	steps := []string{"ready→allocated", "allocated→started", "started→finished",
		"allocated→seen", "seen→fetched", "fetched→exec", "exec→exited", "exited→published", "published→finished", "finished→committed"}
	gaps := make([][]float64, len(steps))
	ms := func(a, b *time.Time) (float64, bool) {
		if a == nil || b == nil {
			return 0, false
		}
		return float64(b.Sub(*a).Microseconds()) / 1000, true
	}
	add := func(i int, a, b *time.Time) {
		if v, ok := ms(a, b); ok {
			gaps[i] = append(gaps[i], v)
		}
	}
	for i, b := range bs {
		if i > 0 {
			add(0, bs[i-1].Finished, b.Allocated)
		}
		add(1, b.Allocated, b.Started)
		add(2, b.Started, b.Finished)
		nodes[b.LastNode]++
		tl := b.Timeline
		if tl == nil {
			continue
		}
		add(3, b.Allocated, tl.Seen)
		add(4, tl.Seen, tl.Fetched)
		add(5, tl.Fetched, tl.Exec)
		add(6, tl.Exec, tl.Exited)
		add(7, tl.Exited, tl.Published)
		add(8, tl.Published, b.Finished)
		add(9, b.Finished, tl.Committed)
	}
	var where []string
	for n, k := range nodes {
		role := "follower"
		if n == leaderID {
			role = "leader"
		}
		where = append(where, fmt.Sprintf("%d on a %s", k, role))
	}
	slices.Sort(where)
	var s bytes.Buffer
	fmt.Fprintf(&s, "builds %s; ", strings.Join(where, ", "))
	for i, st := range steps {
		fmt.Fprintf(&s, "%s %.1f ms; ", st, median(gaps[i]))
	}
	return s.String()
}

// nixExport is g's .drv files in the format of `nix-store --export`, for
// `nix-store --import`: for each, 1, its NAR, the magic "NIXE", its path,
// its references and no deriver or signature; then 0.
func nixExport(t *testing.T, root string, g *drvgraph.Graph) []byte {
	t.Helper()
	var b bytes.Buffer
	putInt := func(n uint64) { b.Write(binenc.LittleEndian.AppendUint64(nil, n)) }
	putString := func(s string) {
		putInt(uint64(len(s)))
		b.WriteString(s)
		b.Write(make([]byte, (8-len(s)%8)%8))
	}
	for _, p := range g.Order {
		putInt(1)
		if err := nar.Dump(&b, filepath.Join(root, p.Base())); err != nil {
			t.Fatal(err)
		}
		putInt(0x4558494e)
		putString(string(p))
		putInt(uint64(len(g.Inputs[p])))
		for _, in := range g.Inputs[p] {
			putString(string(in))
		}
		putString("")
		putInt(0)
	}
	putInt(0)
	return b.Bytes()
}

// buildTimeline is the node-local part of a build's timeline in
// `builds --json`.
type buildTimeline struct {
	Seen      *time.Time `json:"seen"`
	Committed *time.Time `json:"committed"`
	Fetched   *time.Time `json:"fetched"`
	Exec      *time.Time `json:"exec"`
	Exited    *time.Time `json:"exited"`
	Published *time.Time `json:"published"`
}

// TestChainContinuesWhereItsInputIs submits a chain of dependent builds on a
// follower of a three-host mesh and checks, from `builds --json` on another
// host, that each build after the first ran once, on the host that built its
// input, and was taken with that input's success: allocated and started at
// the same instant, the success's, with no allocation round or Started
// commit in between (scheduler/DESIGN.md, "Taking the next build").
func TestChainContinuesWhereItsInputIs(t *testing.T) {
	c := newCluster(t,
		"--raft-profile", raftProfile(),
		"--gossip-interval", "1s",
		"--max-builds", "2",
		"--system", nativeSystem(),
		"--log-level", "info")
	hosts, ids, ok := formThree(t, c)
	if !ok {
		return
	}
	submitter := nonLeader(t, hosts, ids)
	const n = 8
	_, bs := meshBuild(t, submitter, hosts, drvgraph.Options{Chain: n})
	slices.SortFunc(bs, func(a, b buildJSON) int { return int(a.ID) - int(b.ID) })
	if len(bs) != n {
		t.Fatalf("%d builds listed, want %d", len(bs), n)
	}
	for i, b := range bs {
		if b.State != "succeeded" || b.Attempt != 1 {
			t.Errorf("build %d: %s after %d attempts", b.ID, b.State, b.Attempt)
		}
		if i == 0 {
			continue
		}
		prev := bs[i-1]
		switch {
		case b.LastNode != prev.LastNode:
			t.Errorf("build %d ran on %s, its input on %s", b.ID, b.LastNode, prev.LastNode)
		case b.Allocated == nil || b.Started == nil || prev.Finished == nil:
			t.Errorf("build %d lacks its times: %+v", b.ID, b)
		case !b.Allocated.Equal(*b.Started) || b.Allocated.Before(*prev.Finished):
			t.Errorf("build %d allocated %v, started %v, its input finished %v: not taken with the input's success",
				b.ID, b.Allocated, b.Started, prev.Finished)
		}
	}
}
