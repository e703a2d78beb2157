package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// request is a checked request: its parameters, its build id if the path
// has one, and the replica index it was answered at.
type request struct {
	w     http.ResponseWriter
	r     *http.Request
	p     params
	id    uint64
	index uint64
}

// indexError is a read whose ?index= was not applied in time.
type indexError struct {
	want, applied uint64
	wait          time.Duration
}

func (e *indexError) Error() string {
	return fmt.Sprintf("index %d not applied on this node within %s (applied %d): its replica trails the leader; "+
		"retry, perhaps with a longer wait=", e.want, e.wait, e.applied)
}

// prepare checks a request's parameters (allowed, plus index and wait) and
// path, waits for ?index= if given, and records the replica's index in the
// X-Tbfg-Index header: a client that sends it back as ?index= later reads
// a state at least as new (read-your-writes, or a long poll with index+1).
func (s *Server) prepare(w http.ResponseWriter, r *http.Request, allowed []string) (*request, error) {
	p, err := parseParams(r.URL.RawQuery, append(allowed, "index", "wait")...)
	if err != nil {
		return nil, err
	}
	req := &request{w: w, r: r, p: p}
	if v := r.PathValue("id"); v != "" {
		if req.id, err = parseBuildID(v); err != nil {
			return nil, err
		}
	}
	at, err := p.readAt()
	if err != nil {
		return nil, err
	}
	if at.index > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), at.wait)
		err := s.cfg.Replica.WaitIndex(ctx, at.index)
		cancel()
		if err != nil {
			w.Header().Set("X-Tbfg-Index", strconv.FormatUint(s.cfg.Replica.Index(), 10))
			return nil, &indexError{want: at.index, applied: s.cfg.Replica.Index(), wait: at.wait}
		}
	}
	req.index = s.cfg.Replica.Index()
	w.Header().Set("X-Tbfg-Index", strconv.FormatUint(req.index, 10))
	return req, nil
}

// api wraps a JSON API handler.
func (s *Server) api(fn func(context.Context, *request) (any, error), allowed ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		req, err := s.prepare(w, r, allowed)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		v, err := fn(r.Context(), req)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}

// writeJSON writes v as compact JSON, one line.
func writeJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode answer: "+err.Error(), http.StatusInternalServerError)
		return
	}
	body = append(body, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	w.Write(body)
}

// statusOf maps an error to an HTTP status.
func statusOf(err error) int {
	var pe *ParamError
	var ie *indexError
	switch {
	case errors.As(err, &pe):
		return http.StatusBadRequest
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.As(err, &ie), errors.Is(err, ErrUnavailable), errors.Is(err, ErrTooManyClients):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// apiError is the body of every JSON API error.
type apiError struct {
	Error string `json:"error"`
}

// writeError answers err: JSON under /api/, plain text elsewhere.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := statusOf(err)
	if code == http.StatusInternalServerError {
		s.log.Warn("status request failed", "path", r.URL.Path, "err", err)
	}
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	if strings.HasPrefix(r.URL.Path, "/api/") {
		writeJSON(w, code, apiError{Error: err.Error()})
		return
	}
	http.Error(w, err.Error(), code)
}
