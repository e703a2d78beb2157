package web

import (
	"path"
	"strings"
	"time"

	"github.com/tbfg/tbfg-node/node/adminapi"
	"github.com/tbfg/tbfg-node/scheduler"
)

// What pages and the JSON API read from the replica. Each function reads
// under the replica's read lock and copies what it needs; templates run
// after the lock is released.

// buildRow is one build in a table.
type buildRow struct {
	ID        uint64
	Name      string // package name: the derivation's base name without hash and .drv
	Drv       string
	System    string
	State     string
	Node      string // node of the latest attempt
	Reason    string
	Message   string
	Submitted time.Time
	Allocated time.Time
	Started   time.Time
	Finished  time.Time
	Tail      []string // last log lines, for running builds on the overview
}

func rowOf(b scheduler.BuildInfo) buildRow {
	r := buildRow{ID: uint64(b.ID), Name: drvName(b.Drv), Drv: b.Drv, System: b.System, State: b.State.String(),
		Node: b.LastNode, Message: b.Message, Submitted: b.Submitted, Allocated: b.Allocated, Started: b.Started,
		Finished: b.Finished}
	if b.Reason != scheduler.ReasonNone {
		r.Reason = b.Reason.String()
	}
	return r
}

func rowsOf(bs []scheduler.BuildInfo) []buildRow {
	out := make([]buildRow, len(bs))
	for i, b := range bs {
		out[i] = rowOf(b)
	}
	return out
}

// drvName is "hello-2.12" for /gnu/store/<hash>-hello-2.12.drv.
func drvName(p string) string {
	base := strings.TrimSuffix(path.Base(p), ".drv")
	if _, name, ok := strings.Cut(base, "-"); ok {
		return name
	}
	return base
}

// queueTable is the queue by system (rows) and state (columns).
type queueTable struct {
	States []string // columns: states with at least one build
	Rows   []queueRow
	Total  queueRow
}

type queueRow struct {
	System string
	Counts []int // by column
	All    int
}

func queueTableOf(counts []scheduler.QueueCount) queueTable {
	var t queueTable
	var cols []scheduler.BuildState
	for _, c := range counts {
		if !containsState(cols, c.State) {
			cols = append(cols, c.State)
		}
	}
	sortStates(cols)
	for _, c := range cols {
		t.States = append(t.States, c.String())
	}
	t.Total = queueRow{System: "all", Counts: make([]int, len(cols))}
	for _, c := range counts {
		if len(t.Rows) == 0 || t.Rows[len(t.Rows)-1].System != c.System {
			t.Rows = append(t.Rows, queueRow{System: c.System, Counts: make([]int, len(cols))})
		}
		row := &t.Rows[len(t.Rows)-1]
		i := indexState(cols, c.State)
		row.Counts[i] += c.Builds
		row.All += c.Builds
		t.Total.Counts[i] += c.Builds
		t.Total.All += c.Builds
	}
	return t
}

func containsState(xs []scheduler.BuildState, s scheduler.BuildState) bool {
	return indexState(xs, s) >= 0
}

func indexState(xs []scheduler.BuildState, s scheduler.BuildState) int {
	for i, x := range xs {
		if x == s {
			return i
		}
	}
	return -1
}

// sortStates orders states as a build moves through them: queued first.
func sortStates(xs []scheduler.BuildState) {
	rank := func(s scheduler.BuildState) int {
		order := []scheduler.BuildState{scheduler.BuildQueued, scheduler.BuildBlocked, scheduler.BuildAllocated,
			scheduler.BuildRunning, scheduler.BuildSucceeded, scheduler.BuildAvailable, scheduler.BuildFailed,
			scheduler.BuildFailedDependency, scheduler.BuildCanceled}
		return indexState(order, s)
	}
	for i := 1; i < len(xs); i++ {
		for j := i; j > 0 && rank(xs[j]) < rank(xs[j-1]); j-- {
			xs[j], xs[j-1] = xs[j-1], xs[j]
		}
	}
}

// hourBar is one hour of the finished-builds chart.
type hourBar struct {
	Hour      time.Time
	Succeeded int
	Failed    int
	Level     int // bar height, 0 to 10, relative to the busiest hour
}

func hourBars(hs []scheduler.HourCount) []hourBar {
	top := 0
	for _, h := range hs {
		top = max(top, h.Succeeded+h.Failed)
	}
	out := make([]hourBar, len(hs))
	for i, h := range hs {
		out[i] = hourBar{Hour: h.Hour, Succeeded: h.Succeeded, Failed: h.Failed}
		if n := h.Succeeded + h.Failed; n > 0 {
			out[i].Level = max(1, (10*n+top-1)/top)
		}
	}
	return out
}

// Running builds shown on the overview; more are linked.
const overviewRunning = 20

// queueView is what the overview reads from the replica.
type queueView struct {
	Queue       queueTable
	Running     []buildRow
	RunningMore int
	Recent      []buildRow
	Hours       []hourBar
	// HoursSucceeded and HoursFailed add up Hours.
	HoursSucceeded, HoursFailed int
	Members                     []scheduler.MemberInfo
}

var runningStates = []scheduler.BuildState{scheduler.BuildAllocated, scheduler.BuildRunning}

// readQueue reads the overview's share of the replica.
func readQueue(r Replica, now time.Time) queueView {
	var v queueView
	r.Read(func(s *scheduler.State) {
		running := scheduler.BuildFilter{States: runningStates}
		v.Queue = queueTableOf(s.QueueCounts())
		v.Running = rowsOf(s.BuildsNewest(running, 0, overviewRunning).Builds)
		v.RunningMore = s.CountBuilds(running) - len(v.Running)
		v.Recent = rowsOf(s.RecentlyEnded(10))
		v.Hours = hourBars(s.FinishedPerHour(now, 24))
		for _, h := range v.Hours {
			v.HoursSucceeded += h.Succeeded
			v.HoursFailed += h.Failed
		}
		v.Members = s.Members()
	})
	return v
}

// failureRow is one failed build and what it blocks.
type failureRow struct {
	buildRow
	Blocked      []uint64
	BlockedCount int
}

// Bounds of the failures page: blocked builds listed and counted per failure.
const (
	blockedListed  = 5
	blockedCounted = 10000
)

func failureRows(s *scheduler.State, bs []scheduler.BuildInfo) []failureRow {
	out := make([]failureRow, len(bs))
	for i, b := range bs {
		ids, n := s.Blocked(b.ID, blockedListed, blockedCounted)
		out[i] = failureRow{buildRow: rowOf(b), BlockedCount: n}
		for _, id := range ids {
			out[i].Blocked = append(out[i].Blocked, uint64(id))
		}
	}
	return out
}

// pathLink is a store path with the URL of its narinfo.
type pathLink struct {
	Name      string // output name, for outputs
	Path      string
	Narinfo   string // "" when no substitute server is known
	Available bool
	Holders   []string
}

// attemptRow is one attempt of a build.
type attemptRow struct {
	N         int
	Node      string
	Allocated time.Time
	Started   time.Time
	Ended     time.Time
	State     string
	Reason    string
	Message   string
}

// buildDetail is the build page's share of the replica.
type buildDetail struct {
	Build    adminapi.BuildView
	Row      buildRow
	Features []string
	Tags     []scheduler.Tag
	Cause    uint64
	Outputs  []pathLink
	Inputs   []pathLink
	Attempts []attemptRow
	Blocked  []uint64
	BlockedN int
}

// readBuild reads one build for its page; ok is false for an unknown id.
func readBuild(r Replica, id uint64, substituteURL string) (d buildDetail, ok bool) {
	r.Read(func(s *scheduler.State) {
		b, found := s.Build(scheduler.BuildID(id))
		if !found {
			return
		}
		ok = true
		d = buildDetail{Build: adminapi.NewBuildView(b), Row: rowOf(b), Features: b.Features, Tags: b.Tags, Cause: uint64(b.Cause)}
		for _, o := range b.Outputs {
			d.Outputs = append(d.Outputs, pathLinkOf(s, o.Name, o.Path, substituteURL))
		}
		for _, p := range b.Inputs {
			d.Inputs = append(d.Inputs, pathLinkOf(s, "", p, substituteURL))
		}
		for i, a := range s.Attempts(b.ID) {
			row := attemptRow{N: i + 1, Node: a.Node, Allocated: a.Allocated, Started: a.Started, Ended: a.Ended,
				State: a.State.String(), Message: a.Message}
			if a.Reason != scheduler.ReasonNone {
				row.Reason = a.Reason.String()
			}
			d.Attempts = append(d.Attempts, row)
		}
		ids, n := s.Blocked(b.ID, blockedListed*4, blockedCounted)
		for _, id := range ids {
			d.Blocked = append(d.Blocked, uint64(id))
		}
		d.BlockedN = n
	})
	return d, ok
}

func pathLinkOf(s *scheduler.State, name, p, substituteURL string) pathLink {
	l := pathLink{Name: name, Path: p}
	if it, ok := s.Item(p); ok {
		l.Available, l.Holders = it.Available, it.Holders
	}
	if substituteURL != "" {
		l.Narinfo = strings.TrimSuffix(substituteURL, "/") + "/" + hashPart(p) + ".narinfo"
	}
	return l
}

// hashPart is the hash of a store path: its base name up to the first dash.
func hashPart(p string) string {
	h, _, _ := strings.Cut(path.Base(p), "-")
	return h
}
