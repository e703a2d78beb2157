package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/substitutes/narcache"
)

// Defaults for the zero values of Config.
const (
	DefaultPriority        = 100
	DefaultTTL             = time.Hour
	DefaultNegativeTTL     = time.Minute
	DefaultShutdownTimeout = 10 * time.Second
	defaultQueueLen        = 256
)

// Config configures a Server.
type Config struct {
	// StoreDir is the store directory of the published items.
	StoreDir store.Dir
	// Source provides narinfos, NARs and logs.
	Source Source
	// Cache holds compressed and uncompressed NARs once checked. The
	// Server does not close it.
	Cache *narcache.Cache
	// Compressions are offered beside the uncompressed NAR, in the order of
	// the narinfo's URL blocks (Nix takes the last); nil means gzip then
	// zstd, an empty slice only the uncompressed NAR. Known: "gzip", "zstd".
	Compressions []string
	// SigningKey is served as /signing-key.pub, in the format of Guix's
	// signing-key.pub (pki.PublicKey.Marshal); nil answers 404.
	SigningKey []byte
	// Priority goes into /nix-cache-info (lower is preferred by Nix); 0
	// means DefaultPriority, the value of guix publish.
	Priority int
	// TTL is the max-age of narinfos, NARs and logs served; 0 means
	// DefaultTTL.
	TTL time.Duration
	// NegativeTTL is the max-age of 404 answers for narinfos; 0 means
	// DefaultNegativeTTL.
	NegativeTTL time.Duration
	// Workers is the number of background compression jobs at once, and of
	// on-the-fly compressed streams; 0 means half the CPUs, at least one.
	Workers int
	// ShutdownTimeout bounds how long Serve waits for requests in flight
	// when its context ends; 0 means DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Observer, when set, is told of every answer and of NAR cache hits
	// and misses (a node's metrics).
	Observer Observer
	// Logger receives request failures and cache activity; nil discards.
	Logger *slog.Logger
}

// Server serves substitutes. Create it with New; it is an http.Handler, and
// Serve runs it on a listener together with its compression workers.
type Server struct {
	cfg             Config
	log             *slog.Logger
	cacheInfo       []byte
	cacheInfoLength string
	hitCacheControl string
	// Header values of every hit and of narinfos, shared by all answers
	// (see serveBody).
	hitCache, narinfoType []string

	rmu      sync.RWMutex
	rendered map[string]*rendered // by hash part

	jobs    chan job
	mu      sync.Mutex
	pending map[string]bool  // base names with a queued or running job
	sizes   map[string]int64 // cache key → size of the entry, once known

	streams chan struct{} // slots for on-the-fly compression

	// observe, when set by a test before Serve, sees every request.
	observe func(*http.Request)
	// fastAnswers counts the requests the fast path answered.
	fastAnswers atomic.Int64
}

// New checks cfg, fills in defaults and returns a Server.
func New(cfg Config) (*Server, error) {
	if err := cfg.StoreDir.Validate(); err != nil {
		return nil, fmt.Errorf("%w: store directory: %w", ErrConfig, err)
	}
	if cfg.Source == nil || cfg.Cache == nil {
		return nil, fmt.Errorf("%w: Source and Cache are required", ErrConfig)
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		jobs:     make(chan job, defaultQueueLen),
		pending:  map[string]bool{},
		sizes:    map[string]int64{},
		streams:  make(chan struct{}, cfg.Workers),
		rendered: map[string]*rendered{},
	}
	s.hitCacheControl = s.maxAge(cfg.TTL)
	s.hitCache, s.narinfoType = []string{s.hitCacheControl}, []string{typeNarinfo}
	s.cacheInfo = fmt.Appendf(nil, "StoreDir: %s\nWantMassQuery: 1\nPriority: %d\n", cfg.StoreDir, cfg.Priority)
	s.cacheInfoLength = strconv.Itoa(len(s.cacheInfo))
	return s, nil
}

func (c *Config) setDefaults() error {
	if c.Compressions == nil {
		c.Compressions = []string{CompressionGzip, CompressionZstd}
	}
	seen := map[string]bool{}
	for _, comp := range c.Compressions {
		if !knownCompression(comp) || seen[comp] {
			return fmt.Errorf("%w: compression %q is unknown or repeated (known: gzip, zstd)", ErrConfig, comp)
		}
		seen[comp] = true
	}
	c.Compressions = append([]string(nil), c.Compressions...)
	setDefault(&c.Priority, DefaultPriority)
	setDefault(&c.TTL, DefaultTTL)
	setDefault(&c.NegativeTTL, DefaultNegativeTTL)
	setDefault(&c.ShutdownTimeout, DefaultShutdownTimeout)
	setDefault(&c.Workers, max(1, runtime.NumCPU()/2))
	if c.Priority < 0 || c.TTL < 0 || c.NegativeTTL < 0 || c.Workers < 0 || c.ShutdownTimeout < 0 {
		return fmt.Errorf("%w: negative Priority, TTL, NegativeTTL, Workers or ShutdownTimeout", ErrConfig)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Serve answers HTTP requests on ln and runs the compression workers until
// ctx ends, then stops accepting, lets requests in flight finish for up to
// ShutdownTimeout, cuts the rest, stops the workers and returns. It closes
// ln. It returns nil after a shutdown through ctx. Call it at most once.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	workCtx, stopWork := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range s.cfg.Workers {
		wg.Go(func() { s.work(workCtx) })
	}
	// Connections start on the fast path (fastpath.go), which hands them
	// to hs when it cannot answer.
	fl := newFastListener(s, hs, ln)
	fl.run()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(fl) }()

	var err error
	select {
	case <-ctx.Done():
		// Both paths wind down at once, each within ShutdownTimeout.
		var fwg sync.WaitGroup
		fwg.Go(func() { fl.shutdown(s.cfg.ShutdownTimeout) })
		err = s.shutdown(hs)
		fwg.Wait()
		<-errc
	case err = <-errc:
		err = fmt.Errorf("substitute server: %w", err)
		fl.shutdown(s.cfg.ShutdownTimeout)
	}
	// Workers stop after the HTTP server, so that no request queues a job
	// that nobody will run.
	stopWork()
	wg.Wait()
	return err
}

// shutdown stops hs gracefully, or forcibly after ShutdownTimeout.
func (s *Server) shutdown(hs *http.Server) error {
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		s.log.Warn("substitute server: cutting requests still running at shutdown")
		return hs.Close()
	}
	return err
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.observe != nil {
		s.observe(r)
	}
	if s.cfg.Observer == nil {
		s.serve(w, r)
		return
	}
	cw := &countingWriter{ResponseWriter: w}
	kind := s.serve(cw, r)
	s.cfg.Observer.SubstituteRequest(kindOf(kind), cw.status(), cw.bytes)
}

// serve answers a request and returns the kind of resource it named, 0 if
// it was refused before that was known.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) routeKind {
	if len(r.RequestURI) > MaxURILen || len(r.URL.Path) > MaxURILen {
		http.Error(w, "request URI too long", http.StatusRequestURITooLong)
		return 0
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed: the substitute server is read-only", http.StatusMethodNotAllowed)
		return 0
	}
	rt, err := parseRoute(r.URL.Path)
	if err != nil {
		s.refuse(w, err)
		return 0
	}
	switch rt.kind {
	case routeCacheInfo:
		s.serveBytes(w, r, typeCacheInfo, s.cacheInfo)
	case routeSigningKey:
		s.serveSigningKey(w, r)
	case routeNarinfo:
		s.serveNarinfo(w, r, rt.hash)
	case routeNAR:
		s.serveNAR(w, r, rt)
	case routeLog:
		s.serveLog(w, r, rt.base)
	}
	return rt.kind
}

// refuse answers a request the server will not serve.
func (s *Server) refuse(w http.ResponseWriter, err error) {
	status, msg := http.StatusInternalServerError, "internal error"
	var re *requestError
	if errors.As(err, &re) {
		status, msg = re.status, re.msg
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, msg, status)
}
