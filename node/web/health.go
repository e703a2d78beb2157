package web

import (
	"fmt"
	"net/http"
)

// healthz answers 200 while the process serves.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if _, err := parseParams(r.URL.RawQuery); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeText(w, http.StatusOK, "ok")
}

// readyz answers 200 when this node is a member, knows a leader and its
// replica has caught up with the commit index; otherwise 503 with the
// reason on one line.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if _, err := parseParams(r.URL.RawQuery); err != nil {
		s.writeError(w, r, err)
		return
	}
	if reason := s.notReady(); reason != "" {
		writeText(w, http.StatusServiceUnavailable, "not ready: "+reason)
		return
	}
	writeText(w, http.StatusOK, "ready")
}

// notReady returns why the node is not ready, "" when it is.
func (s *Server) notReady() string {
	raft := s.cfg.Backend.Raft()
	applied := s.cfg.Replica.Index()
	switch {
	case !raft.Member:
		return "not a member of the mesh's Raft configuration"
	case raft.Leader == "":
		return "no leader known"
	case raft.CommitIndex > applied+s.cfg.ReadyLag:
		return fmt.Sprintf("replica behind: applied index %d of %d committed", applied, raft.CommitIndex)
	}
	return ""
}

func writeText(w http.ResponseWriter, code int, line string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	fmt.Fprintln(w, line)
}
