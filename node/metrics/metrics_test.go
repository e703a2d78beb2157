package metrics_test

import (
	"bytes"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tbfg/tbfg-node/internal/citest"
	"github.com/tbfg/tbfg-node/node/metrics"
	"github.com/tbfg/tbfg-node/node/web/webtest"
	"github.com/tbfg/tbfg-node/scheduler"
)

// newMetrics makes a registry over a queue with builds in several states.
func newMetrics(t *testing.T) (*metrics.Metrics, *webtest.Backend) {
	t.Helper()
	b := webtest.New()
	if err := b.Join("n1", 2, "x86_64-linux", "aarch64-linux"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Populate(100, "n1", "x86_64-linux", "aarch64-linux"); err != nil {
		t.Fatal(err)
	}
	m := metrics.New(metrics.Sources{
		Queue:              b.FSM,
		Raft:               func() metrics.Raft { return metrics.Raft{Leader: true, CommitIndex: 42, AppliedIndex: 41} },
		Members:            func() map[string]int { return map[string]int{"voter": 3, "nonvoter": 1} },
		ReplicationBacklog: func() int { return 7 },
		Traffic:            func() metrics.Traffic { return metrics.Traffic{Direct: 1000, Relayed: 20, Forwarded: 300} },
	})
	m.BuildFinished("x86_64-linux", metrics.ResultSucceeded, 90*time.Second)
	m.BuildFinished("x86_64-linux", "exploded", time.Second)
	m.SubstituteRequest(metrics.KindNarinfo, 200, 512)
	m.SubstituteRequest(metrics.KindNAR, 404, 0)
	m.SubstituteRequest("/etc/passwd", 999, 10)
	m.NARCacheHit()
	m.NARCacheMiss()
	m.NARCacheMiss()
	m.StoreItemRemoved("replica", 100)
	m.StoreItemRemoved("replica", 50)
	return m, b
}

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("scrape: %d", rec.Code)
	}
	return rec.Body.String()
}

func TestValues(t *testing.T) {
	m, b := newMetrics(t)
	want := map[scheduler.BuildState]int{}
	b.FSM.Read(func(s *scheduler.State) {
		for _, bi := range s.Builds(0, 0, nil) {
			if bi.System == "x86_64-linux" {
				want[bi.State]++
			}
		}
	})
	text := scrape(t, m)
	for st := scheduler.BuildQueued; st.String() != "unknown"; st++ {
		line := `tbfg_builds{state="` + st.String() + `",system="x86_64-linux"} ` + strconv.Itoa(want[st])
		if !strings.Contains(text, line+"\n") {
			t.Errorf("missing %q (a full recount of the queue)", line)
		}
	}
	for _, line := range []string{
		"tbfg_raft_leader 1", "tbfg_raft_commit_index 42", "tbfg_raft_applied_index 41",
		`tbfg_mesh_members{suffrage="voter"} 3`, `tbfg_mesh_members{suffrage="nonvoter"} 1`,
		"tbfg_replication_backlog 7",
		`tbfg_mesh_stream_bytes_total{kind="direct"} 1000`, `tbfg_mesh_stream_bytes_total{kind="relayed"} 20`,
		"tbfg_relay_forwarded_bytes_total 300",
		`tbfg_build_duration_seconds_count{result="succeeded",system="x86_64-linux"} 1`,
		`tbfg_build_duration_seconds_bucket{result="succeeded",system="x86_64-linux",le="120"} 1`,
		`tbfg_build_duration_seconds_bucket{result="succeeded",system="x86_64-linux",le="60"} 0`,
		`tbfg_build_duration_seconds_count{result="other",system="x86_64-linux"} 1`,
		`tbfg_substitute_requests_total{code="200",kind="narinfo"} 1`,
		`tbfg_substitute_requests_total{code="404",kind="nar"} 1`,
		`tbfg_substitute_requests_total{code="other",kind="other"} 1`,
		"tbfg_substitute_bytes_total 522",
		"tbfg_nar_cache_hits_total 1", "tbfg_nar_cache_misses_total 2",
		`tbfg_gc_removed_items_total{class="replica"} 2`, `tbfg_gc_removed_bytes_total{class="replica"} 150`,
	} {
		if !strings.Contains(text, line+"\n") {
			t.Errorf("missing %q", line)
		}
	}
	if t.Failed() {
		t.Log(text)
	}
	// A state change shows at the next scrape.
	if n := testutil.CollectAndCount(m.Registry(), "tbfg_builds"); n != 2*9 {
		t.Errorf("tbfg_builds has %d series, want 2 systems × 9 states", n)
	}
}

// TestPromtool checks the whole /metrics output with Prometheus's own
// linter, promtool (Debian package prometheus).
func TestPromtool(t *testing.T) {
	promtool := citest.Tool(t, "promtool", "prometheus")
	m, _ := newMetrics(t)
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(scrape(t, m))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
	if len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("promtool check metrics reported problems:\n%s", out)
	}
}
