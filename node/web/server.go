package web

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Config configures a Server. Backend and Replica are required.
type Config struct {
	// Backend is the node: its status, the mesh members, Raft, build logs.
	Backend Backend
	// Replica is this node's copy of the build queue.
	Replica Replica
	// Metrics serves /metrics (see package node/metrics); nil answers 404.
	Metrics http.Handler
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock of relative times and charts; nil is time.Now.
	Now func() time.Time

	// ClientBuffer is how many events an /events client may fall behind
	// before it is dropped; default 256.
	ClientBuffer int
	// MaxClients bounds the open /events streams, and separately the logs
	// followed with ?follow=1; default 256.
	MaxClients int
	// Heartbeat is the interval of keep-alive comments on /events, so that
	// a vanished client is noticed; default 15s.
	Heartbeat time.Duration
	// TailInterval is how often the log tails of running builds are sent
	// to the overview; default 1s.
	TailInterval time.Duration
	// WriteTimeout bounds each write to a client; default 10s.
	WriteTimeout time.Duration
	// ReadyLag is how many entries the replica may trail the commit index
	// and still be ready; default 64.
	ReadyLag uint64
}

// Server is the status server: HTML pages, the JSON API, /events, /metrics,
// /healthz and /readyz. It only reads; every route answers GET and HEAD.
type Server struct {
	cfg     Config
	log     *slog.Logger
	hub     *hub
	tails   *tailer
	handler http.Handler
	// templates are the parsed pages, by name (render.go).
	templates map[string]*template.Template
	// membersChanged wakes the event loop for a mesh membership change.
	membersChanged chan struct{}
	// follows holds a token per log followed through the API.
	follows chan struct{}

	runOnce sync.Once
}

// New checks cfg, fills in defaults and returns a server. Its event loop
// runs in Run (or Serve).
func New(cfg Config) (*Server, error) {
	if cfg.Backend == nil || cfg.Replica == nil {
		return nil, errors.New("web: Config needs a Backend and a Replica")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	setDefault(&cfg.ClientBuffer, 256)
	setDefault(&cfg.MaxClients, 256)
	setDefault(&cfg.Heartbeat, 15*time.Second)
	setDefault(&cfg.TailInterval, time.Second)
	setDefault(&cfg.WriteTimeout, 10*time.Second)
	setDefault(&cfg.ReadyLag, 64)
	s := &Server{cfg: cfg, log: cfg.Logger, hub: newHub(cfg.ClientBuffer, cfg.MaxClients),
		membersChanged: make(chan struct{}, 1), follows: make(chan struct{}, cfg.MaxClients)}
	s.tails = newTailer(cfg.Backend, s.hub, cfg.Logger)
	var err error
	if s.templates, err = s.parseTemplates(); err != nil {
		return nil, err
	}
	s.handler = s.secure(s.routes())
	return s, nil
}

func setDefault[T int | uint64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// MembersChanged tells open pages that the mesh's membership or leader
// changed (the node calls it on Raft configuration and leader changes;
// members joining or leaving the build queue are seen in the replica). It
// never blocks.
func (s *Server) MembersChanged() {
	select {
	case s.membersChanged <- struct{}{}:
	default:
	}
}

// Serve serves HTTP on ln and runs the event loop until ctx ends, then shuts
// down: event streams end first (they would hold Shutdown), then requests in
// flight get up to 5 seconds.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		// Requests end with the server: a log follower or a wait for an
		// index must not outlive it.
		BaseContext: func(net.Listener) context.Context { return ctx },
		ErrorLog:    slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	runDone := make(chan error, 1)
	go func() { runDone <- s.Run(ctx) }()
	serveDone := make(chan error, 1)
	go func() { serveDone <- hs.Serve(ln) }()
	var err error
	served := false
	select {
	case <-ctx.Done():
	case err = <-serveDone:
		served = true
	}
	cancel()
	<-runDone // Run closes the hub: event streams end
	shutCtx, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	if serr := hs.Shutdown(shutCtx); serr != nil {
		hs.Close()
	}
	if !served {
		err = <-serveDone
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("status server: %w", err)
	}
	return nil
}

// Run runs the event loop (replica changes to /events, log tails) until ctx
// ends, then closes every event stream. It may be called once; Serve calls
// it.
func (s *Server) Run(ctx context.Context) error {
	ran := false
	s.runOnce.Do(func() {
		ran = true
		s.loop(ctx)
	})
	if !ran {
		return errors.New("web: Run called twice")
	}
	return nil
}

// routes maps every path to its handler. Patterns with GET also answer
// HEAD; any other method gets 405 with an Allow header.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.page(s.overview, "tails", "partial"))
	mux.HandleFunc("GET /builds", s.page(s.buildList, "state", "system", "node", "before", "partial"))
	mux.HandleFunc("GET /builds/{id}", s.page(s.buildPage, "partial"))
	mux.HandleFunc("GET /failures", s.page(s.failures, "before", "partial"))
	mux.HandleFunc("GET /events", s.events)
	mux.HandleFunc("GET /api/v1/status", s.api(s.apiStatus))
	mux.HandleFunc("GET /api/v1/nodes", s.api(s.apiNodes))
	mux.HandleFunc("GET /api/v1/builds", s.api(s.apiBuilds, "state", "system", "node", "after", "before", "limit"))
	mux.HandleFunc("GET /api/v1/builds/{id}", s.api(s.apiBuild))
	mux.HandleFunc("GET /api/v1/builds/{id}/log", s.apiLog)
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("GET /static/{file}", s.static)
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/static/icon.svg", http.StatusMovedPermanently)
	})
	mux.HandleFunc("GET /metrics", s.metrics)
	return mux
}

// contentSecurityPolicy allows the page's own script, styles and event
// stream, and nothing inline: an injected <script> would not run.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// secure sets the security headers of every answer.
func (s *Server) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Metrics == nil {
		http.Error(w, "no metrics on this node", http.StatusNotFound)
		return
	}
	if _, err := parseParams(r.URL.RawQuery); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.cfg.Metrics.ServeHTTP(w, r)
}
