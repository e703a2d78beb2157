package publish

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// fastFixture is a running server with one item whose narinfo is memoised.
type fastFixture struct {
	s    *Server
	addr string
	it   item
	path string // /<hash>.narinfo
}

func newFastFixture(t *testing.T) fastFixture {
	t.Helper()
	k := newKeys(t)
	it := makeItem(t, k, "fast-1.0", map[string][]byte{"data": []byte("fast path\n")})
	mem := NewMemSource()
	mem.Add(it.ni, it.nar)
	s := newServer(t, mem, nil)
	url := start(t, s)
	eventually(t, "every variant cached", func() bool {
		ni, _ := fetchNarinfo(t, url, it.ni.StorePath)
		return len(ni.Files) == 3
	})
	// The request that memoises the narinfo went through net/http.
	fetchNarinfo(t, url, it.ni.StorePath)
	return fastFixture{s: s, addr: strings.TrimPrefix(url, "http://"), it: it,
		path: "/" + it.ni.StorePath.HashPart() + ".narinfo"}
}

// exchange sends raw on a fresh connection, closes its writing side and
// reads every response until the server closes.
func exchange(t *testing.T, addr, raw string) []*http.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	_ = c.(*net.TCPConn).CloseWrite()
	var out []*http.Response
	br := bufio.NewReader(c)
	for {
		method := http.MethodGet
		if strings.HasPrefix(raw, "HEAD ") {
			method = http.MethodHead
		}
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			return out
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("body: %v", err)
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		out = append(out, resp)
		raw = raw[strings.Index(raw, "\r\n\r\n")+4:]
	}
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestFastPathSameAnswer checks that GET and HEAD of a memoised narinfo and
// of /nix-cache-info are answered by the fast path with what ServeHTTP answers: status, header
// fields (Date aside) and body.
func TestFastPathSameAnswer(t *testing.T) {
	fx := newFastFixture(t)
	for _, tt := range []struct{ method, path string }{
		{http.MethodGet, fx.path}, {http.MethodHead, fx.path},
		{http.MethodGet, "/nix-cache-info"}, {http.MethodHead, "/nix-cache-info"},
	} {
		t.Run(tt.method+tt.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			fx.s.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			before := fx.s.fastAnswers.Load()
			resps := exchange(t, fx.addr, tt.method+" "+tt.path+" HTTP/1.1\r\nHost: x\r\n\r\n")
			if len(resps) != 1 {
				t.Fatalf("%d answers, want 1", len(resps))
			}
			if fx.s.fastAnswers.Load() != before+1 {
				t.Fatal("the fast path did not answer")
			}
			got := resps[0]
			if got.StatusCode != rec.Code {
				t.Errorf("status %d, ServeHTTP's %d", got.StatusCode, rec.Code)
			}
			want := rec.Result().Header
			for _, h := range []string{"Content-Type", "Content-Length", "Cache-Control"} {
				if !slices.Equal(got.Header.Values(h), want.Values(h)) {
					t.Errorf("%s: %q, ServeHTTP's %q", h, got.Header.Values(h), want.Values(h))
				}
			}
			if _, err := http.ParseTime(got.Header.Get("Date")); err != nil {
				t.Errorf("Date %q: %v", got.Header.Get("Date"), err)
			}
			if len(got.Header) != 4 {
				t.Errorf("header %v, want only Cache-Control, Content-Length, Content-Type and Date", got.Header)
			}
			if body := readBody(t, got); body != rec.Body.String() {
				t.Errorf("body %q, ServeHTTP's %q", body, rec.Body.String())
			}
		})
	}
}

// TestFastPathHandOff pipelines requests on one connection: the fast path
// answers the narinfos and the cached NAR until a request it leaves to
// net/http (a log), and net/http answers that one and everything after it,
// in order.
func TestFastPathHandOff(t *testing.T) {
	fx := newFastFixture(t)
	narinfoReq := "GET " + fx.path + " HTTP/1.1\r\nHost: x\r\n\r\n"
	narReq := "GET /nar/" + fx.it.ni.StorePath.Base() + " HTTP/1.1\r\nHost: x\r\n\r\n"
	logReq := "GET /log/" + fx.it.ni.StorePath.Base() + " HTTP/1.1\r\nHost: x\r\n\r\n"
	before := fx.s.fastAnswers.Load()
	resps := exchange(t, fx.addr, narinfoReq+narReq+narinfoReq+logReq+narReq+narinfoReq)
	if len(resps) != 6 {
		t.Fatalf("%d answers, want 6", len(resps))
	}
	if n := fx.s.fastAnswers.Load() - before; n != 3 {
		t.Errorf("the fast path answered %d requests, want the first 3", n)
	}
	want := []string{"narinfo", "nar", "narinfo", "log", "nar", "narinfo"}
	for i, resp := range resps {
		body := readBody(t, resp)
		if want[i] == "log" {
			if resp.StatusCode != 404 {
				t.Errorf("answer %d (log): %s", i, resp.Status)
			}
			continue
		}
		if resp.StatusCode != 200 {
			t.Fatalf("answer %d: %s", i, resp.Status)
		}
		isNAR := body == string(fx.it.nar)
		if isNAR != (want[i] == "nar") || !isNAR && !strings.HasPrefix(body, "StorePath: ") {
			t.Errorf("answer %d is not the %s: %q", i, want[i], body)
		}
	}
}

// TestFastPathDeclines checks requests the fast path must leave to
// net/http, which answers them as it always does.
func TestFastPathDeclines(t *testing.T) {
	fx := newFastFixture(t)
	missing := "/" + strings.Repeat("0", 32) + ".narinfo"
	tests := []struct {
		name, raw string
		status    int
	}{
		{"HTTP/1.0", "GET " + fx.path + " HTTP/1.0\r\n\r\n", 200},
		{"connection close", "GET " + fx.path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 200},
		{"no host", "GET " + fx.path + " HTTP/1.1\r\n\r\n", 400},
		{"two hosts", "GET " + fx.path + " HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400},
		{"bad header name", "GET " + fx.path + " HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n", 400},
		{"folded header", "GET " + fx.path + " HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", 0},
		{"escaped path", "GET /" + fx.path[1:5] + "%61" + fx.path[6:] + " HTTP/1.1\r\nHost: x\r\n\r\n", 0},
		{"query", "GET " + fx.path + "?x=1 HTTP/1.1\r\nHost: x\r\n\r\n", 200},
		{"absolute URI", "GET http://x" + fx.path + " HTTP/1.1\r\nHost: x\r\n\r\n", 200},
		{"post", "POST " + fx.path + " HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 405},
		{"body", "GET " + fx.path + " HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx", 200},
		{"unknown item", "GET " + missing + " HTTP/1.1\r\nHost: x\r\n\r\n", 404},
		{"bare LF", "GET " + fx.path + " HTTP/1.1\nHost: x\n\n", 200},
		{"cut short", "GET " + fx.path + " HTTP/1.1\r\nHost: x\r\n", 400},
		{"NAR with a query", "GET /nar/" + fx.it.ni.StorePath.Base() + "?x HTTP/1.1\r\nHost: x\r\n\r\n", 200},
		{"escaped NAR", "GET /nar/%7a" + fx.it.ni.StorePath.Base()[1:] + " HTTP/1.1\r\nHost: x\r\n\r\n", 0},
		{"NAR of an unknown item", "GET /nar/" + strings.Repeat("0", 32) + "-x HTTP/1.1\r\nHost: x\r\n\r\n", 404},
		{"NAR of a wrong name", "GET /nar/" + fx.it.ni.StorePath.HashPart() + "-other HTTP/1.1\r\nHost: x\r\n\r\n", 404},
		{"NAR in an unknown compression", "GET /nar/lzip/" + fx.it.ni.StorePath.Base() + " HTTP/1.1\r\nHost: x\r\n\r\n", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := fx.s.fastAnswers.Load()
			resps := exchange(t, fx.addr, tt.raw)
			if fx.s.fastAnswers.Load() != before {
				t.Error("the fast path answered")
			}
			switch {
			case len(resps) == 0:
				t.Fatal("no answer")
			case tt.status != 0 && resps[0].StatusCode != tt.status:
				t.Errorf("status %s, want %d", resps[0].Status, tt.status)
			}
		})
	}
}

// TestFastPathShutdown checks that Serve returns promptly with a
// connection idle on the fast path, and closes it.
func TestFastPathShutdown(t *testing.T) {
	k := newKeys(t)
	it := makeItem(t, k, "idle-1.0", map[string][]byte{"data": []byte("idle\n")})
	mem := NewMemSource()
	mem.Add(it.ni, it.nar)
	s := newServer(t, mem, func(c *Config) { c.ShutdownTimeout = time.Minute })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	url := "http://" + ln.Addr().String()
	eventually(t, "every variant cached", func() bool {
		ni, _ := fetchNarinfo(t, url, it.ni.StorePath)
		return len(ni.Files) == 3
	})
	fetchNarinfo(t, url, it.ni.StorePath)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	before := s.fastAnswers.Load()
	fmt.Fprintf(c, "GET /%s.narinfo HTTP/1.1\r\nHost: x\r\n\r\n", it.ni.StorePath.HashPart())
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("narinfo: %v %v", resp, err)
	}
	readBody(t, resp)
	if s.fastAnswers.Load() != before+1 {
		t.Fatal("the fast path did not answer")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve still running 30s after its context ended")
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Errorf("idle connection not closed: %q, %v", rest, err)
	}
}

// TestFastPathBareLF checks that a request whose lines end with a bare LF,
// which the fast path leaves to net/http, is answered at once and not after
// the header timeout.
func TestFastPathBareLF(t *testing.T) {
	fx := newFastFixture(t)
	c, err := net.Dial("tcp", fx.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second)) // the header timeout is 10s
	fmt.Fprintf(c, "GET %s HTTP/1.1\nHost: x\n\n", fx.path)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer within 5s: %v", err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(readBody(t, resp), "StorePath: ") {
		t.Errorf("answer %s", resp.Status)
	}
}
