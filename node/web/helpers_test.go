package web_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/testlog"
	"github.com/tbfg/tbfg-node/mesh"
	"github.com/tbfg/tbfg-node/node/adminapi"
	"github.com/tbfg/tbfg-node/node/web"
	"github.com/tbfg/tbfg-node/node/web/webtest"
	"github.com/tbfg/tbfg-node/scheduler"
)

const (
	x86   = "x86_64-linux"
	arm   = "aarch64-linux"
	node1 = "12D3KooWNodeOneAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA1"
	node2 = "12D3KooWNodeTwoBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB2"
)

// fixture is a backend with a small history: ids 1 hello (succeeded on
// node1), 2 broken (failed on node2, its log has a <script> line), 3 app
// (failed-dependency of broken), 4 compiler (running on node1, with a log),
// 5 arm-tool (queued, aarch64).
type fixture struct {
	b                                   *webtest.Backend
	hello, broken, app, compiler, armID uint64
}

const scriptLine = `<script>alert("owned")</script>`

func newFixture(t testing.TB) *fixture {
	t.Helper()
	b := webtest.New()
	f := &fixture{b: b}
	must(t, b.Join(node1, 4, x86, arm))
	must(t, b.Join(node2, 2, x86))
	ids, err := b.Submit(webtest.Drv("hello-2.12", x86), webtest.Drv("broken-1.0", x86),
		webtest.Drv("app-3.1", x86, "broken-1.0"), webtest.Drv("compiler-9", x86), webtest.Drv("arm-tool-1", arm))
	must(t, err)
	f.hello, f.broken, f.app, f.compiler, f.armID = ids[0], ids[1], ids[2], ids[3], ids[4]
	must(t, b.Run(f.hello, node1))
	b.AppendLog(f.hello, "building hello\nok\n")
	must(t, b.Succeed(f.hello, node1))
	must(t, b.Run(f.broken, node2))
	b.AppendLog(f.broken, "configure\n"+scriptLine+"\nerror: & failed\n")
	must(t, b.Fail(f.broken, node2, scheduler.ReasonBuildError, "builder exited with status 2"))
	must(t, b.Run(f.compiler, node1))
	b.AppendLog(f.compiler, "compiling stage 1\ncompiling stage 2\n")
	last := webtest.Start.Add(time.Hour - 5*time.Second)
	b.SetNodes([]adminapi.NodeView{
		{ID: node1, Suffrage: "voter", Leader: true, Self: true, Reachability: "private", LastSeen: &last,
			NodeStatus: &mesh.NodeStatus{Systems: []string{x86, arm}, MaxBuilds: 4, RunningBuilds: 1, Load1: 0.5,
				Cores: 8, StoreFreeBytes: 100 << 30, Version: "v0.9.0", SubstituteURL: "http://192.0.2.1:8761"}},
		{ID: node2, Suffrage: "voter", Conn: "relayed", LastSeen: &last,
			NodeStatus: &mesh.NodeStatus{Systems: []string{x86}, MaxBuilds: 2, Version: "v0.9.0",
				StoreFreeBytes: 1288490188, MinFree: 5 << 30}},
	})
	b.SetStatus(adminapi.Status{ID: node1, Leader: node1, State: "running", Members: 2, Voters: 2,
		NodeStatus: mesh.NodeStatus{SubstituteURL: "http://192.0.2.1:8761", Version: "v0.9.0"}})
	b.SetRaft(web.RaftInfo{Member: true, Leader: node1, CommitIndex: b.Index()})
	return f
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// newServer makes a server over b with short timings for tests, its clock
// an hour after the backend's.
func newServer(t testing.TB, b *webtest.Backend, metrics http.Handler) *web.Server {
	t.Helper()
	s, err := web.New(web.Config{Backend: b, Replica: b.FSM, Metrics: metrics, Logger: testlog.New(t, "web"),
		Now: func() time.Time { return webtest.Start.Add(time.Hour) }, TailInterval: 20 * time.Millisecond,
		ClientBuffer: 16, WriteTimeout: 5 * time.Second})
	must(t, err)
	return s
}

// newServerAt makes a server over b whose clock is now.
func newServerAt(t testing.TB, b *webtest.Backend, now func() time.Time) *web.Server {
	t.Helper()
	s, err := web.New(web.Config{Backend: b, Replica: b.FSM, Logger: testlog.New(t, "web"), Now: now,
		TailInterval: 100 * time.Millisecond})
	must(t, err)
	return s
}

// serve runs s on a loopback listener until the test ends.
func serve(t testing.TB, s *web.Server) string {
	t.Helper()
	ts := httptest.NewUnstartedServer(s.Handler())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	ts.Start()
	t.Cleanup(func() {
		cancel()
		<-done
		ts.Close()
	})
	return ts.URL
}

// get performs a request against the handler and returns the response and
// its body.
func get(t testing.TB, h http.Handler, method, target string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	res := rec.Result()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

func contains(s string, subs ...string) string {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return sub
		}
	}
	return ""
}
