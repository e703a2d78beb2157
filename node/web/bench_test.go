package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/node/adminapi"
	"github.com/tbfg/tbfg-node/node/web"
	"github.com/tbfg/tbfg-node/node/web/webtest"
	"github.com/tbfg/tbfg-node/scheduler"
)

// The benchmarks report ratios against references measured in the same run:
//
//	go test -run '^$' -bench . -benchtime 200x ./node/web/

// benchState is a server over a queue of n builds, two of them running with
// logs.
type benchState struct {
	b *webtest.Backend
	h http.Handler
}

func newBenchState(b *testing.B, n int) benchState {
	b.Helper()
	be := webtest.New()
	must(b, be.Join(node1, 4, x86, arm))
	_, err := be.Populate(n, node1, x86, arm)
	must(b, err)
	ids, err := be.Submit(webtest.Drv("bench-a", x86), webtest.Drv("bench-b", arm))
	must(b, err)
	for _, id := range ids {
		must(b, be.Run(id, node1))
		be.AppendLog(id, strings.Repeat("a line of build output\n", 200))
	}
	be.SetNodes([]adminapi.NodeView{{ID: node1, Suffrage: "voter", Leader: true, Self: true}})
	s, err := web.New(web.Config{Backend: be, Replica: be.FSM})
	must(b, err)
	return benchState{b: be, h: s.Handler()}
}

// serveOnce answers one request and checks it succeeded.
func serveOnce(b *testing.B, h http.Handler, target string) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
	if rec.Code != 200 {
		b.Fatalf("%s: %d %s", target, rec.Code, rec.Body)
	}
}

// BenchmarkStatus100k answers /, /api/v1/builds?limit=100 and other pages
// with 100,000 builds in the state. The reference is json.Marshal of the
// same 100 builds as the API page, already copied out of the state: the
// least any answer of 100 builds costs. The same pages over 10,000 builds
// (enough to fill every page) show that the cost does not grow with the
// state.
func BenchmarkStatus100k(b *testing.B) {
	big, small := newBenchState(b, 100_000), newBenchState(b, 10_000)
	var ref []adminapi.BuildView
	rec := httptest.NewRecorder()
	big.h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/builds?limit=100", nil))
	must(b, json.Unmarshal(rec.Body.Bytes(), &ref))
	if len(ref) != 100 {
		b.Fatalf("reference has %d builds", len(ref))
	}
	targets := []struct{ name, path string }{
		{"overview", "/"},
		{"api-builds-100", "/api/v1/builds?limit=100"},
		{"api-builds-100-succeeded-x86", "/api/v1/builds?limit=100&state=succeeded&system=" + x86},
		// No build matches: the whole index is scanned, 64 builds a word.
		{"api-builds-none-failed-x86", "/api/v1/builds?limit=100&state=failed&system=" + x86},
		{"builds-page", "/builds"},
		{"failures-page", "/failures"},
	}
	var refTime time.Duration
	bigTime := make([]time.Duration, len(targets))
	smallTime := make([]time.Duration, len(targets))
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		if _, err := json.Marshal(ref); err != nil {
			b.Fatal(err)
		}
		refTime += time.Since(start)
		for i, tg := range targets {
			start = time.Now()
			serveOnce(b, big.h, tg.path)
			bigTime[i] += time.Since(start)
			start = time.Now()
			serveOnce(b, small.h, tg.path)
			smallTime[i] += time.Since(start)
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(refTime.Nanoseconds())/n, "json100-ns")
	for i, tg := range targets {
		b.ReportMetric(float64(bigTime[i])/float64(refTime), tg.name+"/json100")
		b.ReportMetric(float64(bigTime[i])/float64(smallTime[i]), tg.name+"-100k/10k")
	}
}

// sseClient reads an event stream and reports each build event.
func sseClient(b *testing.B, url string, got chan<- struct{}) func() {
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	res, err := http.DefaultClient.Do(req)
	must(b, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			if sc.Text() == "event: build" {
				got <- struct{}{}
			}
		}
	}()
	return func() { cancel(); res.Body.Close(); <-done }
}

// BenchmarkEventsFanout100 measures one build state change reaching 100
// /events clients over loopback HTTP: the command applied, its change read,
// one event encoded and written to every stream. The reference writes the
// same bytes to 100 loopback TCP connections read by 100 goroutines, the
// network cost of the fan-out alone.
func BenchmarkEventsFanout100(b *testing.B) {
	const clients = 100
	be := webtest.New()
	must(b, be.Join(node1, 4, x86))
	ids, err := be.Submit(webtest.Drv("toggled", x86))
	must(b, err)
	s, err := web.New(web.Config{Backend: be, Replica: be.FSM, MaxClients: clients})
	must(b, err)
	ts := httptest.NewUnstartedServer(s.Handler())
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- s.Run(ctx) }()
	ts.Start()
	defer func() { cancel(); <-runDone; ts.Close() }()
	http.DefaultTransport.(*http.Transport).MaxIdleConnsPerHost = clients
	got := make(chan struct{}, clients)
	for range clients {
		stop := sseClient(b, ts.URL+"/events", got)
		defer stop()
	}
	ref := newTCPFanout(b, clients)
	defer ref.close()
	msg := []byte(fmt.Sprintf("event: build\ndata: {\"id\":%d,\"derivation\":%q,\"state\":\"canceled\",\"node\":\"\",\"system\":%q,\"index\":9}\n\n",
		ids[0], webtest.StorePath("toggled.drv"), x86))

	var sseTime, refTime time.Duration
	cancelNext := true
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		if cancelNext {
			_, err = be.Apply(&scheduler.Cancel{Time: be.Now(), Builds: []scheduler.BuildID{scheduler.BuildID(ids[0])}})
		} else {
			_, err = be.Apply(&scheduler.Retry{Time: be.Now(), Builds: []scheduler.BuildID{scheduler.BuildID(ids[0])}})
		}
		must(b, err)
		cancelNext = !cancelNext
		for range clients {
			<-got
		}
		sseTime += time.Since(start)
		start = time.Now()
		ref.send(msg)
		refTime += time.Since(start)
	}
	b.ReportMetric(float64(sseTime.Nanoseconds())/float64(b.N), "sse-ns/event")
	b.ReportMetric(float64(refTime.Nanoseconds())/float64(b.N), "tcp-ns/event")
	b.ReportMetric(float64(sseTime)/float64(refTime), "sse/tcp")
}

// tcpFanout is the reference: 100 loopback TCP connections, each read by a
// goroutine that reports every whole message.
type tcpFanout struct {
	conns []net.Conn
	got   chan struct{}
	wg    sync.WaitGroup
}

func newTCPFanout(b *testing.B, n int) *tcpFanout {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(b, err)
	defer ln.Close()
	f := &tcpFanout{got: make(chan struct{}, n)}
	for range n {
		c, err := net.Dial("tcp", ln.Addr().String())
		must(b, err)
		s, err := ln.Accept()
		must(b, err)
		f.conns = append(f.conns, s)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer c.Close()
			r := bufio.NewReader(c)
			for {
				// A message ends with a blank line, as an event does.
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if line == "\n" {
					f.got <- struct{}{}
				}
			}
		}()
	}
	return f
}

func (f *tcpFanout) send(msg []byte) {
	for _, c := range f.conns {
		if _, err := c.Write(msg); err != nil {
			panic(err)
		}
	}
	for range f.conns {
		<-f.got
	}
}

func (f *tcpFanout) close() {
	for _, c := range f.conns {
		c.Close()
	}
	f.wg.Wait()
}
