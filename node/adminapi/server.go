package adminapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
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

	// Index is the Raft index the node's replica has applied.
	Index() uint64
	// WaitIndex returns once the replica has applied index, or an error
	// when ctx ends first.
	WaitIndex(ctx context.Context, index uint64) error
	// Changes returns the builds that changed after cursor ("" for none:
	// an answer with Reset at once), waiting until there is one or ctx
	// ends; then it answers with no builds and the current cursor.
	Changes(ctx context.Context, cursor string) (Changes, error)
	// Cancel and Retry commit the scheduler's Cancel and Retry commands
	// for ids and answer the builds once the replica applied them.
	Cancel(ctx context.Context, ids []uint64) (ActionResult, error)
	Retry(ctx context.Context, ids []uint64) (ActionResult, error)
	// Log opens the log of build id, from whichever member holds it;
	// with follow, reading it returns io.EOF only once the build ended.
	Log(ctx context.Context, id uint64, follow bool) (io.ReadCloser, error)
	// GC collects the node's store now (or with req.DryRun says what it
	// would remove).
	GC(ctx context.Context, req GCRequest) (GCResult, error)
}

// Bounds of request bodies: POST /v1/submit, and POST /v1/cancel and
// /v1/retry.
const (
	maxSubmitBody = 64 << 20
	maxActionBody = 1 << 20
)

// IndexHeader is the header of every GET answer with the Raft index the
// node's replica had applied when it answered.
const IndexHeader = "X-Tbfg-Index"

// Server is the admin API: HTTP with JSON bodies on a 0600 unix socket.
// Every route lives under /v1/; new ones are added to routes.
type Server struct {
	backend Backend
	log     *slog.Logger
	srv     *http.Server
	done    chan error
	// stopping ends when Shutdown starts, and with it the calls that wait
	// (index waits, long polls, followed logs), which would otherwise hold
	// Shutdown up to their full length.
	stopping context.Context
	stop     context.CancelFunc
}

// NewServer returns the admin API over b, logging failed calls to log.
// It serves nothing until Listen.
func NewServer(b Backend, log *slog.Logger) *Server {
	a := &Server{backend: b, log: log}
	a.stopping, a.stop = context.WithCancel(context.Background())
	a.srv = &http.Server{Handler: a.routes(), ReadHeaderTimeout: 10 * time.Second}
	return a
}

// routes maps each admin API call to its handler. Every GET goes through
// read, which waits for ?index=.
func (a *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", a.read(a.status))
	mux.HandleFunc("GET /v1/nodes", a.read(a.nodes))
	mux.HandleFunc("POST /v1/leave", a.leave)
	mux.HandleFunc("POST /v1/submit", a.submit)
	mux.HandleFunc("GET /v1/builds", a.read(a.builds))
	mux.HandleFunc("GET /v1/builds/{id}/log", a.read(a.buildLog))
	mux.HandleFunc("GET /v1/changes", a.read(a.changes))
	mux.HandleFunc("POST /v1/cancel", a.action(a.backend.Cancel))
	mux.HandleFunc("POST /v1/retry", a.action(a.backend.Retry))
	mux.HandleFunc("GET /v1/acl", a.read(a.acl))
	mux.HandleFunc("POST /v1/gc", a.gc)
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
	a.stop()
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

// readHandler is the handler of a GET, called once the replica applied the
// index the request waits for.
type readHandler func(w http.ResponseWriter, r *http.Request, at ReadAt)

// read wraps a GET: it waits until the replica has applied ?index= (at
// most ?wait=), then answers IndexHeader and calls h. A wait that ends
// first is an error wrapping ErrIndexWait that names both indices.
func (a *Server) read(h readHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		at, err := ParseReadAt(r.URL.Query())
		if err != nil {
			writeError(w, err)
			return
		}
		if at.Index > 0 {
			if err := a.waitIndex(r.Context(), at); err != nil {
				w.Header().Set(IndexHeader, strconv.FormatUint(a.backend.Index(), 10))
				writeError(w, err)
				return
			}
		}
		w.Header().Set(IndexHeader, strconv.FormatUint(a.backend.Index(), 10))
		h(w, r, at)
	}
}

// waitIndex waits until the replica has applied at.Index, at most at.Wait.
func (a *Server) waitIndex(ctx context.Context, at ReadAt) error {
	ctx, cancel := a.bounded(ctx, at.Wait)
	defer cancel()
	if err := a.backend.WaitIndex(ctx, at.Index); err != nil {
		if errors.Is(err, ErrUnavailable) {
			return err
		}
		return fmt.Errorf("%w: this node has applied Raft index %d, not yet %d, after waiting %s: "+
			"its replica trails the leader (see tbfg-node status here and on the leader); retry with a longer wait",
			ErrIndexWait, a.backend.Index(), at.Index, at.Wait)
	}
	return nil
}

// bounded returns ctx cut after d and when Shutdown starts.
func (a *Server) bounded(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, d)
	stop := context.AfterFunc(a.stopping, cancel)
	return ctx, func() { stop(); cancel() }
}

func (a *Server) status(w http.ResponseWriter, r *http.Request, _ ReadAt) {
	writeJSON(w, http.StatusOK, a.backend.Status())
}

func (a *Server) nodes(w http.ResponseWriter, r *http.Request, _ ReadAt) {
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

func (a *Server) builds(w http.ResponseWriter, r *http.Request, _ ReadAt) {
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

func (a *Server) acl(w http.ResponseWriter, r *http.Request, _ ReadAt) {
	v, err := a.backend.ACL()
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// writeError answers with err's text and the kind of its sentinel: 503
// when the node is not ready or a wait for an index ended, 400 for a bad
// request, 404 for an unknown build or log.
func writeError(w http.ResponseWriter, err error) {
	e := apiError{Error: err.Error()}
	for _, k := range errorKinds {
		if errors.Is(err, k.err) {
			e.Kind = k.kind
			break
		}
	}
	code := http.StatusInternalServerError
	switch e.Kind {
	case "unavailable", "index-wait":
		code = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", "1")
	case "bad-request":
		code = http.StatusBadRequest
	case "no-build", "no-log":
		code = http.StatusNotFound
	}
	writeJSON(w, code, e)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away; nothing to do
}
