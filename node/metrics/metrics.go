package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tbfg/tbfg-node/scheduler"
)

// Queue is the replicated build queue; a *scheduler.FSM implements it.
type Queue interface {
	Read(fn func(*scheduler.State))
}

// Raft is what the Raft metrics export.
type Raft struct {
	Leader       bool   // this node leads
	CommitIndex  uint64 // highest log index known committed
	AppliedIndex uint64 // highest log index applied to the replica
}

// Sources are read at each scrape. A nil source leaves its metrics out.
type Sources struct {
	// Queue gives tbfg_builds{state,system}.
	Queue Queue
	// Raft gives tbfg_raft_leader, tbfg_raft_commit_index and
	// tbfg_raft_applied_index.
	Raft func() Raft
	// Members counts the mesh's members by suffrage ("voter",
	// "nonvoter"), for tbfg_mesh_members{suffrage}.
	Members func() map[string]int
	// ReplicationBacklog is how many store items wait for their copy on
	// a second holder, for tbfg_replication_backlog.
	ReplicationBacklog func() int
	// Traffic gives tbfg_mesh_stream_bytes_total{kind} and
	// tbfg_relay_forwarded_bytes_total.
	Traffic func() Traffic
}

// Traffic is what went over the mesh since the node started: its streams'
// bytes (both ways) over direct and over relayed connections, and what its
// relay service forwarded between other members.
type Traffic struct {
	Direct, Relayed, Forwarded uint64
}

// Metrics is a node's registry. Its methods are safe for concurrent use.
type Metrics struct {
	reg           *prometheus.Registry
	buildDuration *prometheus.HistogramVec
	subRequests   *prometheus.CounterVec
	subBytes      prometheus.Counter
	cacheHits     prometheus.Counter
	cacheMisses   prometheus.Counter
	gcItems       *prometheus.CounterVec
	gcBytes       *prometheus.CounterVec
}

// buildBuckets span builds from a second to a day.
var buildBuckets = []float64{1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 86400}

// New returns a registry with the node's metrics over src.
func New(src Sources) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		buildDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tbfg_build_duration_seconds",
			Help:    "Time from start to end of the builds this node ran, by system and result.",
			Buckets: buildBuckets,
		}, []string{"system", "result"}),
		subRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tbfg_substitute_requests_total",
			Help: "Requests to this node's substitute server, by kind (narinfo, nar, log, nix-cache-info, key, other) and HTTP status code.",
		}, []string{"kind", "code"}),
		subBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tbfg_substitute_bytes_total",
			Help: "Bytes of response bodies this node's substitute server sent.",
		}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tbfg_nar_cache_hits_total",
			Help: "NARs served from this node's mesh-wide NAR cache.",
		}),
		cacheMisses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tbfg_nar_cache_misses_total",
			Help: "NARs not in this node's NAR cache, fetched from a holder.",
		}),
		gcItems: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tbfg_gc_removed_items_total",
			Help: "Store items the collector removed, by class (fetched, replica, built).",
		}, []string{"class"}),
		gcBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tbfg_gc_removed_bytes_total",
			Help: "NAR bytes of the store items the collector removed, by class (fetched, replica, built).",
		}, []string{"class"}),
	}
	m.reg.MustRegister(m.buildDuration, m.subRequests, m.subBytes, m.cacheHits, m.cacheMisses, m.gcItems, m.gcBytes,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if src.Queue != nil {
		m.reg.MustRegister(&queueCollector{queue: src.Queue})
	}
	if src.Raft != nil {
		m.reg.MustRegister(&raftCollector{raft: src.Raft})
	}
	if src.Members != nil {
		m.reg.MustRegister(&membersCollector{members: src.Members})
	}
	if src.ReplicationBacklog != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tbfg_replication_backlog",
			Help: "Store items waiting for a copy on a second holder.",
		}, func() float64 { return float64(src.ReplicationBacklog()) }))
	}
	if src.Traffic != nil {
		m.registerTraffic(src.Traffic)
	}
	return m
}

func (m *Metrics) registerTraffic(traffic func() Traffic) {
	for kind, get := range map[string]func(Traffic) uint64{
		"direct":  func(t Traffic) uint64 { return t.Direct },
		"relayed": func(t Traffic) uint64 { return t.Relayed },
	} {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "tbfg_mesh_stream_bytes_total",
			Help:        "Bytes this node's mesh streams carried, both ways, by kind of connection (direct, relayed).",
			ConstLabels: prometheus.Labels{"kind": kind},
		}, func() float64 { return float64(get(traffic())) }))
	}
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "tbfg_relay_forwarded_bytes_total",
		Help: "Bytes this node's relay service forwarded between other members.",
	}, func() float64 { return float64(traffic().Forwarded) }))
}

// Registry is the registry, for registering more collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus text format (or OpenMetrics
// when asked for).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{EnableOpenMetrics: true, MaxRequestsInFlight: 4})
}

// Build results, the values of the result label.
const (
	ResultSucceeded = "succeeded"
	ResultFailed    = "failed"
	ResultCanceled  = "canceled"
)

// BuildFinished records a build this node ran, from start to end; result is
// one of the Result constants.
func (m *Metrics) BuildFinished(system, result string, d time.Duration) {
	switch result {
	case ResultSucceeded, ResultFailed, ResultCanceled:
	default:
		result = "other"
	}
	m.buildDuration.WithLabelValues(system, result).Observe(d.Seconds())
}

// The kinds of substitute requests, the values of the kind label.
const (
	KindNarinfo   = "narinfo"
	KindNAR       = "nar"
	KindLog       = "log"
	KindCacheInfo = "nix-cache-info"
	KindKey       = "key"
	KindOther     = "other"
)

// SubstituteRequest records one answered request of the substitute server
// and the bytes of its body.
func (m *Metrics) SubstituteRequest(kind string, code int, bytes int64) {
	switch kind {
	case KindNarinfo, KindNAR, KindLog, KindCacheInfo, KindKey:
	default:
		kind = KindOther
	}
	c := "other"
	if code >= 100 && code <= 599 {
		c = strconv.Itoa(code)
	}
	m.subRequests.WithLabelValues(kind, c).Inc()
	if bytes > 0 {
		m.subBytes.Add(float64(bytes))
	}
}

// NARCacheHit records a NAR served from the cache.
func (m *Metrics) NARCacheHit() { m.cacheHits.Inc() }

// NARCacheMiss records a NAR the cache did not have.
func (m *Metrics) NARCacheMiss() { m.cacheMisses.Inc() }

// StoreItemRemoved records an item the store collector removed, of class
// (fetched, replica or built) and size bytes.
func (m *Metrics) StoreItemRemoved(class string, size int64) {
	m.gcItems.WithLabelValues(class).Inc()
	m.gcBytes.WithLabelValues(class).Add(float64(size))
}
