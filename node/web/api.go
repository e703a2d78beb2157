package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/tbfg/tbfg-node/node/adminapi"
	"github.com/tbfg/tbfg-node/scheduler"
)

// The JSON API: the admin API's objects, read-only, over HTTP.

func (s *Server) apiStatus(ctx context.Context, _ *request) (any, error) {
	return s.cfg.Backend.Status(ctx)
}

func (s *Server) apiNodes(ctx context.Context, _ *request) (any, error) {
	nodes, err := s.cfg.Backend.Nodes(ctx)
	if nodes == nil && err == nil {
		nodes = []adminapi.NodeView{}
	}
	return nodes, err
}

// buildsQuery is a checked ?state=&system=&node=&after=&before=&limit=.
type buildsQuery struct {
	filter scheduler.BuildFilter
	after  uint64 // oldest first after this id
	before uint64 // newest first below this id (0: from the newest)
	limit  int
}

func (p params) buildsQuery(def int) (buildsQuery, error) {
	var q buildsQuery
	var err error
	if q.filter, err = p.filter(); err != nil {
		return q, err
	}
	if q.after, err = p.uint("after"); err != nil {
		return q, err
	}
	if q.before, err = p.uint("before"); err != nil {
		return q, err
	}
	if p.get("after") != "" && p.get("before") != "" {
		return q, &ParamError{Param: "before", Problem: "give after (oldest first) or before (newest first), not both"}
	}
	q.limit, err = p.limit(def)
	return q, err
}

// page reads one page of builds.
func (q buildsQuery) page(s *scheduler.State) scheduler.Page {
	if q.after > 0 {
		return s.BuildsOldest(q.filter, scheduler.BuildID(q.after), q.limit)
	}
	return s.BuildsNewest(q.filter, scheduler.BuildID(q.before), q.limit)
}

// apiBuilds lists builds: newest first, or oldest first from ?after= as the
// admin API pages. When more follow, a Link header names the next page.
func (s *Server) apiBuilds(_ context.Context, req *request) (any, error) {
	q, err := req.p.buildsQuery(defaultLimit)
	if err != nil {
		return nil, err
	}
	var page scheduler.Page
	s.cfg.Replica.Read(func(st *scheduler.State) { page = q.page(st) })
	out := make([]adminapi.BuildView, len(page.Builds))
	for i, b := range page.Builds {
		out[i] = s.buildView(b)
	}
	if page.Next != 0 {
		v := url.Values{}
		for k, vs := range req.p.v {
			if k != "index" && k != "wait" {
				v[k] = vs
			}
		}
		if q.after > 0 {
			v.Set("after", strconv.FormatUint(uint64(page.Next), 10))
		} else {
			v.Set("before", strconv.FormatUint(uint64(page.Next), 10))
		}
		req.header().Set("Link", fmt.Sprintf("</api/v1/builds?%s>; rel=\"next\"", v.Encode()))
	}
	return out, nil
}

// header is where a handler adds response headers before the body.
func (req *request) header() http.Header { return req.w.Header() }

func (s *Server) apiBuild(_ context.Context, req *request) (any, error) {
	var b scheduler.BuildInfo
	var ok bool
	s.cfg.Replica.Read(func(st *scheduler.State) { b, ok = st.Build(scheduler.BuildID(req.id)) })
	if !ok {
		return nil, s.missingBuild(req.id)
	}
	return s.buildView(b), nil
}

// buildView is adminapi.NewBuildView with this node's timeline of the
// latest attempt when it ran it, as the admin API answers.
func (s *Server) buildView(b scheduler.BuildInfo) adminapi.BuildView {
	v := adminapi.NewBuildView(b)
	if tl, ok := s.cfg.Backend.Timeline(uint64(b.ID), b.Attempt); ok {
		v.Timeline = &tl
	}
	return v
}

// missingBuild is the not-found error for a build id the replica has no
// record of; for a compacted build it says why.
func (s *Server) missingBuild(id uint64) error {
	compacted := false
	s.cfg.Replica.Read(func(st *scheduler.State) { compacted = st.Compacted(scheduler.BuildID(id)) })
	if compacted {
		return fmt.Errorf("build %d: %w: compacted, it finished longer ago than the mesh keeps build records (--history)", id, ErrNotFound)
	}
	return fmt.Errorf("build %d: %w", id, ErrNotFound)
}
