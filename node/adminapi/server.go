package adminapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"
)

// Backend is what the admin API serves: package node's Node implements it,
// tests use an in-memory one. A call that cannot be answered yet returns an
// error matching ErrUnavailable; a bad request one matching ErrBadRequest;
// an unknown build one matching ErrNoBuild.
type Backend interface {
	Status() Status
	Nodes() ([]NodeView, error)
	Leave(ctx context.Context) error
	Submit(ctx context.Context, req SubmitRequest) (SubmitResult, error)
	Builds(q BuildQuery) ([]BuildView, error)
	ACL() (ACLView, error)
}

// maxSubmitBody bounds the body of POST /v1/submit.
const maxSubmitBody = 64 << 20

// Server is the admin API: HTTP with JSON bodies on a 0600 unix socket.
// Every route lives under /v1/; new ones are added to routes.
type Server struct {
	backend Backend
	log     *slog.Logger
	srv     *http.Server
	done    chan error
}

// NewServer returns the admin API over b, logging failed calls to log.
// It serves nothing until Listen.
func NewServer(b Backend, log *slog.Logger) *Server {
	a := &Server{backend: b, log: log}
	a.srv = &http.Server{Handler: a.routes(), ReadHeaderTimeout: 10 * time.Second}
	return a
}

// routes maps each admin API call to its handler.
func (a *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", a.status)
	mux.HandleFunc("GET /v1/nodes", a.nodes)
	mux.HandleFunc("POST /v1/leave", a.leave)
	mux.HandleFunc("POST /v1/submit", a.submit)
	mux.HandleFunc("GET /v1/builds", a.builds)
	mux.HandleFunc("GET /v1/acl", a.acl)
	return mux
}

// Listen binds the socket at path, replacing a stale one (the caller holds
// the data dir lock, so no live node owns it), and serves in the background.
func (a *Server) Listen(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale admin socket: %w", err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("admin socket: %w", err)
	}
	// The data dir is 0700, so nobody else can reach the socket before this.
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return fmt.Errorf("admin socket: %w", err)
	}
	a.done = make(chan error, 1)
	go func() { a.done <- a.srv.Serve(l) }()
	return nil
}

// Shutdown stops accepting requests and waits for those in flight, at most
// until ctx ends; then it closes what remains.
func (a *Server) Shutdown(ctx context.Context) error {
	if a.done == nil {
		return nil
	}
	err := a.srv.Shutdown(ctx)
	if err != nil {
		a.srv.Close()
	}
	if serr := <-a.done; !errors.Is(serr, http.ErrServerClosed) {
		return errors.Join(err, serr)
	}
	return err
}

func (a *Server) status(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, a.backend.Status())
}

func (a *Server) nodes(w http.ResponseWriter, r *http.Request) {
	nodes, err := a.backend.Nodes()
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, nodes)
}

func (a *Server) leave(w http.ResponseWriter, r *http.Request) {
	id := a.backend.Status().ID // before leaving: a stopping node has none
	if err := a.backend.Leave(r.Context()); err != nil {
		a.log.Warn("leave failed", "err", err)
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, LeaveResult{ID: id})
}

func (a *Server) submit(w http.ResponseWriter, r *http.Request) {
	var req SubmitRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxSubmitBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, fmt.Errorf("%w: submit body: %w", ErrBadRequest, err))
		return
	}
	res, err := a.backend.Submit(r.Context(), req)
	if err != nil {
		a.log.Warn("submit failed", "err", err)
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (a *Server) builds(w http.ResponseWriter, r *http.Request) {
	q, err := ParseBuildQuery(r.URL.Query())
	if err != nil {
		writeError(w, err)
		return
	}
	builds, err := a.backend.Builds(q)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, builds)
}

func (a *Server) acl(w http.ResponseWriter, r *http.Request) {
	v, err := a.backend.ACL()
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// writeError answers with err's text: 503 when the node is not ready, 400
// for a bad request, 404 for an unknown build.
func writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrUnavailable):
		code = http.StatusServiceUnavailable
	case errors.Is(err, ErrBadRequest):
		code = http.StatusBadRequest
	case errors.Is(err, ErrNoBuild):
		code = http.StatusNotFound
	}
	writeJSON(w, code, apiError{Error: err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away; nothing to do
}
