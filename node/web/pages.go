package web

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/tbfg/tbfg-node/node/adminapi"
	"github.com/tbfg/tbfg-node/node/membership"
	"github.com/tbfg/tbfg-node/scheduler"
)

// The HTML pages. Each handler reads what it shows into a page struct and
// the template renders it; every page is complete without JavaScript.

// pageBase is what every page has.
type pageBase struct {
	Title string
	Nav   string // the current section: overview, builds or failures
	Page  string // the page's template, which live.js reads
	Index uint64 // replica index the page was read at
	Self  string // this node's peer ID, "" while unknown
	// Live settings read by live.js from the body's data attributes.
	Shown      uint64 // the build page's build
	LiveBuild  uint64 // the build page's build, while its log grows
	LiveOffset int64  // where its log continues after what the page shows
}

func (p *pageBase) base() *pageBase { return p }

// Budgets for the reads of one page: a slow log holder must not hold it.
const (
	tailsBudget  = 500 * time.Millisecond
	logBudget    = 3 * time.Second
	statusBudget = 2 * time.Second
)

// nodeRow is one member in the mesh table.
type nodeRow struct {
	ID       string
	Self     bool
	Leader   bool
	Suffrage string // voter, nonvoter; "" if not in the Raft configuration
	Status   string // in the build queue: active, lost or left; "" if it never joined it
	Systems  []string
	Running  int
	Max      int
	Load1    float64
	Cores    int
	Free     uint64 // free bytes of the store's file system
	NoBuilds string // why it takes no new builds (low disk, load), "" if it takes them
	Version  string
	LastSeen *time.Time
	Gossiped bool   // a status was heard
	Conn     string // direct or relayed, "" if not connected or self
	Reach    string // self only: public, private or unknown (AutoNAT)
}

// meshRows merges the mesh's view of the members with the build queue's.
func meshRows(nodes []adminapi.NodeView, members []scheduler.MemberInfo) []nodeRow {
	var out []nodeRow
	seen := map[string]bool{}
	for _, n := range nodes {
		r := nodeRow{ID: n.ID, Self: n.Self, Leader: n.Leader, Suffrage: n.Suffrage, LastSeen: n.LastSeen,
			Conn: n.Conn, Reach: n.Reachability}
		if st := n.NodeStatus; st != nil {
			r.Gossiped = true
			r.Systems, r.Running, r.Max, r.Load1, r.Cores = st.Systems, st.RunningBuilds, st.MaxBuilds, st.Load1, st.Cores
			r.Free, r.Version = st.StoreFreeBytes, st.Version
			r.NoBuilds = membership.View(n.ID, *st).NoBuildsReason(scheduler.PlanOptions{})
		}
		out = append(out, r)
		seen[n.ID] = true
	}
	for i := range out {
		for _, m := range members {
			if m.ID == out[i].ID {
				// Slots in use come from the replica, as the queue and
				// the running builds do: gossip lags behind them.
				out[i].Status, out[i].Running = m.Status, m.Active
				if !out[i].Gossiped {
					out[i].Systems, out[i].Max = m.Systems, m.MaxBuilds
				}
			}
		}
	}
	for _, m := range members {
		if !seen[m.ID] && m.Status != "left" {
			out = append(out, nodeRow{ID: m.ID, Status: m.Status, Systems: m.Systems, Max: m.MaxBuilds, Running: m.Active})
		}
	}
	return out
}

type overviewPage struct {
	pageBase
	queueView
	Nodes    []nodeRow
	NodesErr string
	Leader   string
}

func (s *Server) overview(ctx context.Context, req *request) (string, any, error) {
	now := s.cfg.Now()
	p := &overviewPage{pageBase: pageBase{Title: "Overview", Nav: "overview", Index: req.index},
		queueView: readQueue(s.cfg.Replica, now)}
	sctx, cancel := context.WithTimeout(ctx, statusBudget)
	defer cancel()
	nodes, err := s.cfg.Backend.Nodes(sctx)
	if err != nil {
		p.NodesErr = err.Error()
	}
	p.Nodes = meshRows(nodes, p.Members)
	for _, n := range p.Nodes {
		if n.Leader {
			p.Leader = n.ID
		}
		if n.Self {
			p.Self = n.ID
		}
	}
	s.fillTails(ctx, p.Running)
	return "overview", p, nil
}

// fillTails adds the last log lines of running builds: from the tailer when
// it follows them, else read within a shared budget.
func (s *Server) fillTails(ctx context.Context, rows []buildRow) {
	ctx, cancel := context.WithTimeout(ctx, tailsBudget)
	defer cancel()
	for i := range rows {
		if lines, ok := s.tails.lines(rows[i].ID); ok {
			rows[i].Tail = lines
			continue
		}
		if ctx.Err() != nil {
			continue
		}
		if t, err := s.readLogTail(ctx, rows[i].ID, tailBytes); err == nil {
			rows[i].Tail = lastLines(t.Text, tailLines)
		}
	}
}

type listPage struct {
	pageBase
	States  []string
	Systems []string
	Nodes   []string
	State   string
	System  string
	Node    string
	Rows    []buildRow
	Total   int
	Older   string // URL of the next page, "" on the last
	Newest  string // URL of the first page, "" on it
}

func (s *Server) buildList(_ context.Context, req *request) (string, any, error) {
	q, err := req.p.buildsQuery(pageLimit)
	if err != nil {
		return "", nil, err
	}
	p := &listPage{pageBase: pageBase{Title: "Builds", Nav: "builds", Index: req.index}, States: stateNames,
		State: req.p.get("state"), System: q.filter.System, Node: q.filter.Node}
	var page scheduler.Page
	s.cfg.Replica.Read(func(st *scheduler.State) {
		page = q.page(st)
		p.Total = st.CountBuilds(q.filter)
		p.Systems = st.Systems()
		for _, m := range st.Members() {
			p.Nodes = append(p.Nodes, m.ID)
		}
	})
	p.Rows = rowsOf(page.Builds)
	keep := url.Values{}
	for _, k := range []string{"state", "system", "node"} {
		if v := req.p.get(k); v != "" {
			keep.Set(k, v)
		}
	}
	if page.Next != 0 {
		older := cloneValues(keep)
		older.Set("before", strconv.FormatUint(uint64(page.Next), 10))
		p.Older = "/builds?" + older.Encode()
	}
	if q.before != 0 {
		p.Newest = "/builds"
		if len(keep) > 0 {
			p.Newest += "?" + keep.Encode()
		}
	}
	return "builds", p, nil
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

type buildPage struct {
	pageBase
	buildDetail
	Log      logText
	LogErr   string
	Running  bool
	Narinfos bool // a substitute server is known
	Timeline timelineView
}

func (s *Server) buildPage(ctx context.Context, req *request) (string, any, error) {
	sctx, cancel := context.WithTimeout(ctx, statusBudget)
	st, err := s.cfg.Backend.Status(sctx)
	cancel()
	subURL := ""
	if err == nil {
		subURL = st.SubstituteURL
	}
	d, ok := readBuild(s.cfg.Replica, req.id, subURL)
	if !ok {
		return "", nil, s.missingBuild(req.id)
	}
	if tl, ok := s.cfg.Backend.Timeline(req.id, d.Build.Attempt); ok {
		d.Build.Timeline = &tl
	}
	p := &buildPage{pageBase: pageBase{Title: fmt.Sprintf("Build %d: %s", req.id, d.Row.Name), Nav: "builds",
		Index: req.index, Self: st.ID, Shown: req.id}, buildDetail: d, Narinfos: subURL != ""}
	p.Timeline = newTimeline(d.Build)
	state, _ := parseState(d.Row.State)
	p.Running = !state.Done()
	if d.Build.Allocated != nil {
		lctx, cancel := context.WithTimeout(ctx, logBudget)
		p.Log, err = s.readLogTail(lctx, req.id, pageLogBytes)
		cancel()
		if err != nil {
			p.LogErr = err.Error()
		}
	}
	if p.Running {
		p.LiveBuild, p.LiveOffset = req.id, p.Log.End
	}
	return "build", p, nil
}

type failuresPage struct {
	pageBase
	Rows   []failureRow
	Total  int
	Older  string
	Newest string
}

func (s *Server) failures(_ context.Context, req *request) (string, any, error) {
	before, err := req.p.uint("before")
	if err != nil {
		return "", nil, err
	}
	p := &failuresPage{pageBase: pageBase{Title: "Failures", Nav: "failures", Index: req.index}}
	f := scheduler.BuildFilter{States: []scheduler.BuildState{scheduler.BuildFailed}}
	var page scheduler.Page
	s.cfg.Replica.Read(func(st *scheduler.State) {
		page = st.BuildsNewest(f, scheduler.BuildID(before), pageLimit)
		p.Rows = failureRows(st, page.Builds)
		p.Total = st.CountBuilds(f)
	})
	if page.Next != 0 {
		p.Older = "/failures?before=" + strconv.FormatUint(uint64(page.Next), 10)
	}
	if before != 0 {
		p.Newest = "/failures"
	}
	return "failures", p, nil
}
