package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/node/web"
	"github.com/tbfg/tbfg-node/node/web/webtest"
	"github.com/tbfg/tbfg-node/scheduler"
)

func TestReadyz(t *testing.T) {
	tests := []struct {
		name string
		raft web.RaftInfo
		skip uint64 // entries committed but not applied
		code int
		want string
	}{
		{"ready", web.RaftInfo{Member: true, Leader: node1}, 0, 200, "ready\n"},
		{"slightly behind", web.RaftInfo{Member: true, Leader: node1}, 10, 200, "ready\n"},
		{"not a member", web.RaftInfo{Leader: node1}, 0, 503, "not ready: not a member of the mesh's Raft configuration\n"},
		{"no leader", web.RaftInfo{Member: true}, 0, 503, "not ready: no leader known\n"},
		{"behind", web.RaftInfo{Member: true, Leader: node1}, 500, 503, "not ready: replica behind: applied index 11 of 511 committed\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			tt.raft.CommitIndex = f.b.Index() + tt.skip
			f.b.SetRaft(tt.raft)
			h := newServer(t, f.b, nil).Handler()
			res, body := get(t, h, "GET", "/readyz")
			if res.StatusCode != tt.code || body != tt.want {
				t.Fatalf("%d %q, want %d %q", res.StatusCode, body, tt.code, tt.want)
			}
			if res, body := get(t, h, "GET", "/healthz"); res.StatusCode != 200 || body != "ok\n" {
				t.Fatalf("healthz: %d %q", res.StatusCode, body)
			}
		})
	}
}

func TestIndexWait(t *testing.T) {
	f := newFixture(t)
	h := newServer(t, f.b, nil).Handler()
	applied := f.b.Index()

	// An index already applied answers at once.
	res, _ := get(t, h, "GET", fmt.Sprintf("/api/v1/builds?index=%d", applied))
	if res.StatusCode != 200 || res.Header.Get("X-Tbfg-Index") != strconv.FormatUint(applied, 10) {
		t.Fatalf("applied index: %d, X-Tbfg-Index %q", res.StatusCode, res.Header.Get("X-Tbfg-Index"))
	}
	// An index not applied in time is a clear 503.
	res, body := get(t, h, "GET", fmt.Sprintf("/api/v1/builds/1?index=%d&wait=20ms", applied+1))
	want := fmt.Sprintf("index %d not applied on this node within 20ms (applied %d)", applied+1, applied)
	if res.StatusCode != 503 || !strings.Contains(body, want) {
		t.Fatalf("future index: %d %s", res.StatusCode, body)
	}
	// A read waiting for the next index sees the write committed there:
	// read-your-writes on a follower.
	type answer struct {
		code int
		body string
	}
	done := make(chan answer, 1)
	go func() {
		rec := &recorder{header: http.Header{}}
		h.ServeHTTP(rec, mustRequest(fmt.Sprintf("/api/v1/builds?index=%d&state=queued&wait=1m", applied+1)))
		done <- answer{rec.code, rec.body.String()}
	}()
	ids, err := f.b.Submit(webtest.Drv("late-1", x86))
	must(t, err)
	a := <-done
	if a.code != 200 || !strings.Contains(a.body, fmt.Sprintf(`"id":%d`, ids[0])) {
		t.Fatalf("waiting read: %d %s", a.code, a.body)
	}
}

func mustRequest(target string) *http.Request {
	req, err := http.NewRequest("GET", target, nil)
	if err != nil {
		panic(err)
	}
	return req
}

// recorder is a ResponseWriter safe to read after the handler returned.
type recorder struct {
	header http.Header
	code   int
	body   strings.Builder
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(200)
	return r.body.Write(b)
}

func TestLogFollow(t *testing.T) {
	f := newFixture(t)
	url := serve(t, newServer(t, f.b, nil))
	res, err := http.Get(fmt.Sprintf("%s/api/v1/builds/%d/log?follow=1", url, f.compiler))
	must(t, err)
	defer res.Body.Close()
	r := bufio.NewReader(res.Body)
	for _, want := range []string{"compiling stage 1\n", "compiling stage 2\n"} {
		if line, err := r.ReadString('\n'); line != want || err != nil {
			t.Fatalf("line %q (%v), want %q", line, err, want)
		}
	}
	// Lines written while the build runs arrive; the stream ends with it.
	f.b.AppendLog(f.compiler, "linking\n")
	if line, _ := r.ReadString('\n'); line != "linking\n" {
		t.Fatalf("live line %q", line)
	}
	f.b.AppendLog(f.compiler, "done\n")
	must(t, f.b.Succeed(f.compiler, node1))
	rest, err := io.ReadAll(r)
	if err != nil || string(rest) != "done\n" {
		t.Fatalf("end of the log %q, %v", rest, err)
	}
}

// sseEvent is one received Server-Sent Event.
type sseEvent struct {
	name, id, data string
}

// readEvents parses the events of a stream into a channel until it ends.
func readEvents(body io.Reader) <-chan sseEvent {
	ch := make(chan sseEvent, 64)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.name != "" {
					ch <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "event: "):
				ev.name = line[len("event: "):]
			case strings.HasPrefix(line, "id: "):
				ev.id = line[len("id: "):]
			case strings.HasPrefix(line, "data: "):
				ev.data += line[len("data: "):]
			}
		}
	}()
	return ch
}

// next returns the next event named name, skipping others.
func next(t *testing.T, ch <-chan sseEvent, name string) sseEvent {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("stream ended before a %s event", name)
			}
			if ev.name == name {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s event in 10s", name)
		}
	}
}

func openEvents(t *testing.T, url string) <-chan sseEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	must(t, err)
	res, err := http.DefaultClient.Do(req)
	must(t, err)
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	ch := readEvents(res.Body)
	t.Cleanup(func() {
		cancel()
		res.Body.Close()
		for range ch { // the reader ends with the body
		}
	})
	return ch
}

func TestEvents(t *testing.T) {
	f := newFixture(t)
	s := newServer(t, f.b, nil)
	url := serve(t, s)
	// The server subscribes a client before it answers the headers, so
	// once openEvents returns every change reaches it.
	events := openEvents(t, url+"/events")

	must(t, f.b.Succeed(f.compiler, node1))
	var ev web.BuildEvent
	must(t, json.Unmarshal([]byte(next(t, events, "build").data), &ev))
	if ev.ID != f.compiler || ev.State != "succeeded" || ev.Node != node1 || ev.System != x86 ||
		ev.Derivation != webtest.StorePath("compiler-9.drv") || ev.Index != f.b.Index() {
		t.Fatalf("build event %+v", ev)
	}
	must(t, f.b.Join("12D3KooWNodeThree", 1, x86))
	var mev web.MemberEvent
	must(t, json.Unmarshal([]byte(next(t, events, "member").data), &mev))
	if mev.ID != "12D3KooWNodeThree" || mev.Status != "active" {
		t.Fatalf("member event %+v", mev)
	}
	s.MembersChanged()
	next(t, events, "members")
}

func TestEventsBuildLog(t *testing.T) {
	f := newFixture(t)
	url := serve(t, newServer(t, f.b, nil))
	// The page showed the first 18 bytes ("compiling stage 1\n").
	events := openEvents(t, fmt.Sprintf("%s/events?log=%d&offset=18", url, f.compiler))
	ev := next(t, events, "log")
	var chunk struct{ Text string }
	must(t, json.Unmarshal([]byte(ev.data), &chunk))
	if chunk.Text != "compiling stage 2\n" || ev.id != "36" {
		t.Fatalf("first log event %q id %s", chunk.Text, ev.id)
	}
	f.b.AppendLog(f.compiler, "héllo <b>\n")
	ev = next(t, events, "log")
	must(t, json.Unmarshal([]byte(ev.data), &chunk))
	if chunk.Text != "héllo <b>\n" || ev.id != strconv.Itoa(36+len("héllo <b>\n")) {
		t.Fatalf("second log event %q id %s", chunk.Text, ev.id)
	}
	must(t, f.b.Fail(f.compiler, node1, scheduler.ReasonBuildError, "exit 1"))
	var end struct{ State string }
	must(t, json.Unmarshal([]byte(next(t, events, "end").data), &end))
	if end.State != "failed" {
		t.Fatalf("end event state %q", end.State)
	}
}

func TestEventsTails(t *testing.T) {
	f := newFixture(t)
	url := serve(t, newServer(t, f.b, nil))
	events := openEvents(t, url+"/events?tails=1")
	var tail web.TailEvent
	must(t, json.Unmarshal([]byte(next(t, events, "tail").data), &tail))
	if tail.ID != f.compiler || strings.Join(tail.Lines, "|") != "compiling stage 1|compiling stage 2" {
		t.Fatalf("first tail %+v", tail)
	}
	f.b.AppendLog(f.compiler, "stage 3\nhalf a li")
	for {
		must(t, json.Unmarshal([]byte(next(t, events, "tail").data), &tail))
		if strings.Join(tail.Lines, "|") == "compiling stage 1|compiling stage 2|stage 3|half a li" {
			break
		}
	}
}

func TestStreamsBounded(t *testing.T) {
	f := newFixture(t)
	s, err := web.New(web.Config{Backend: f.b, Replica: f.b.FSM, MaxClients: 1})
	must(t, err)
	url := serve(t, s)
	openEvents(t, url+"/events")
	res, err := http.Get(url + "/events")
	must(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 503 || !strings.Contains(string(body), "too many event stream clients") {
		t.Fatalf("second stream: %d %s", res.StatusCode, body)
	}
	follow := fmt.Sprintf("%s/api/v1/builds/%d/log?follow=1", url, f.compiler)
	first, err := http.Get(follow)
	must(t, err)
	defer first.Body.Close()
	res, err = http.Get(follow)
	must(t, err)
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 503 || !strings.Contains(string(body), "too many") {
		t.Fatalf("second follower: %d %s", res.StatusCode, body)
	}
}
