package publish

import (
	"bufio"
	"bytes"
	"crypto/sha256"
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

// bigNARItem publishes one item whose NAR is size bytes or a little more,
// uncompressed only, and returns the running server's address once the NAR
// is cached, with the Observer rec.
func bigNARItem(t *testing.T, size int, rec *recorder) (item, *Server, string) {
	t.Helper()
	it := makeItem(t, newKeys(t), "big-1.0", map[string][]byte{"data": benchData(size)})
	mem := NewMemSource()
	mem.Add(it.ni, it.nar)
	s := newServer(t, mem, func(c *Config) {
		c.Compressions = []string{}
		if rec != nil {
			c.Observer = rec
		}
	})
	url := start(t, s)
	eventually(t, "the NAR cached", func() bool {
		fetchNarinfo(t, url, it.ni.StorePath)
		return s.cfg.Cache.Contains("none/" + it.ni.StorePath.Base())
	})
	return it, s, strings.TrimPrefix(url, "http://")
}

// TestFastPathNARSameAnswer checks that GET and HEAD of every cached
// variant of a NAR are answered by the fast path with what ServeHTTP
// answers: status, header fields (Date aside) and body, the uncompressed
// one byte for byte the NAR.
func TestFastPathNARSameAnswer(t *testing.T) {
	fx := newFastFixture(t)
	base := fx.it.ni.StorePath.Base()
	for _, path := range []string{"/nar/" + base, "/nar/gzip/" + base, "/nar/zstd/" + base} {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			t.Run(method+path, func(t *testing.T) {
				rec := httptest.NewRecorder()
				fx.s.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
				before := fx.s.fastAnswers.Load()
				resps := exchange(t, fx.addr, method+" "+path+" HTTP/1.1\r\nHost: x\r\nUser-Agent: GNU Guile\r\n\r\n")
				if len(resps) != 1 {
					t.Fatalf("%d answers, want 1", len(resps))
				}
				if fx.s.fastAnswers.Load() != before+1 {
					t.Fatal("the fast path did not answer")
				}
				got := resps[0]
				want := rec.Result().Header
				if got.StatusCode != rec.Code || len(got.Header) != 4 {
					t.Errorf("status %d, header %v; ServeHTTP's %d, %v", got.StatusCode, got.Header, rec.Code, want)
				}
				for _, h := range []string{"Content-Type", "Content-Length", "Cache-Control"} {
					if !slices.Equal(got.Header.Values(h), want.Values(h)) {
						t.Errorf("%s: %q, ServeHTTP's %q", h, got.Header.Values(h), want.Values(h))
					}
				}
				body := readBody(t, got)
				if body != rec.Body.String() {
					t.Errorf("body of %d bytes differs from ServeHTTP's %d", len(body), rec.Body.Len())
				}
				if method == http.MethodGet && path == "/nar/"+base && body != string(fx.it.nar) {
					t.Error("the uncompressed NAR is not the item's NAR")
				}
			})
		}
	}
}

// TestFastPathNARBytes sends a NAR of several MiB through sendfile on a
// real TCP connection, pipelined between narinfo requests: every answer is
// whole and in order, the NARs byte for byte the item's.
func TestFastPathNARBytes(t *testing.T) {
	it, s, addr := bigNARItem(t, 6<<20, nil)
	narReq := "GET /nar/" + it.ni.StorePath.Base() + " HTTP/1.1\r\nHost: x\r\n\r\n"
	headReq := "HEAD /nar/" + it.ni.StorePath.Base() + " HTTP/1.1\r\nHost: x\r\n\r\n"
	narinfoReq := "GET /" + it.ni.StorePath.HashPart() + ".narinfo HTTP/1.1\r\nHost: x\r\n\r\n"
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	before := s.fastAnswers.Load()
	if _, err := io.WriteString(c, narReq+narinfoReq+headReq+narReq+narinfoReq); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	want := sha256.Sum256(it.nar)
	for i, kind := range []string{"nar", "narinfo", "head", "nar", "narinfo"} {
		method := http.MethodGet
		if kind == "head" {
			method = http.MethodHead
		}
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatalf("answer %d (%s): %v", i, kind, err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("answer %d (%s): %s, %v", i, kind, resp.Status, err)
		}
		switch kind {
		case "nar":
			if sha256.Sum256(body) != want || len(body) != len(it.nar) {
				t.Errorf("answer %d: %d bytes, not the NAR of %d", i, len(body), len(it.nar))
			}
		case "head":
			if len(body) != 0 || resp.ContentLength != int64(len(it.nar)) {
				t.Errorf("HEAD: %d bytes of body, Content-Length %d", len(body), resp.ContentLength)
			}
		case "narinfo":
			if !bytes.HasPrefix(body, []byte("StorePath: ")) {
				t.Errorf("answer %d: %q", i, body)
			}
		}
	}
	// The first narinfo was memoised by bigNARItem's requests.
	// Counted after each answer's last byte left: wait for the count.
	eventually(t, "the fast path's count of 5 answers", func() bool { return s.fastAnswers.Load()-before == 5 })
}

// TestFastPathNARClientGone: a client that goes away in the middle of a NAR
// ends its connection on the server, which tells the Observer of the bytes
// it sent and goes on serving others.
func TestFastPathNARClientGone(t *testing.T) {
	rec := &recorder{requests: map[string]int{}}
	// The first NAR request is the client that leaves. Larger than what the loopback socket buffers hold, so that the
	// server is still sending when the client closes.
	it, s, addr := bigNARItem(t, 48<<20, rec)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET /nar/%s HTTP/1.1\r\nHost: x\r\n\r\n", it.ni.StorePath.Base())
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("NAR: %v, %v", resp, err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	eventually(t, "the server to give up the NAR", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return rec.requests["nar 200"] == 1
	})
	rec.mu.Lock()
	sent := rec.bytes
	rec.mu.Unlock()
	if sent >= int64(len(it.nar)) {
		t.Fatalf("the server says it sent the whole NAR (%d bytes) to a client that left", sent)
	}
	before := s.fastAnswers.Load()
	resp, body, err := getFresh(t, http.MethodGet, "http://"+addr+"/nar/"+it.ni.StorePath.Base())
	if err != nil || resp.StatusCode != 200 || !bytes.Equal(body, it.nar) {
		t.Fatalf("the next client: %v, %d bytes, %v", resp, len(body), err)
	}
	if s.fastAnswers.Load() != before+1 {
		t.Error("the fast path did not answer the next client")
	}
}

// TestFastPathNARRange: the server does not serve byte ranges (Guix and
// Nix never ask for them); a Range request gets the whole NAR with 200, on
// the fast path as from net/http.
func TestFastPathNARRange(t *testing.T) {
	fx := newFastFixture(t)
	path := "/nar/" + fx.it.ni.StorePath.Base()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Header.Set("Range", "bytes=0-9")
	rec := httptest.NewRecorder()
	fx.s.ServeHTTP(rec, req)
	before := fx.s.fastAnswers.Load()
	resps := exchange(t, fx.addr, "GET "+path+" HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9\r\n\r\n")
	if len(resps) != 1 || fx.s.fastAnswers.Load() != before+1 {
		t.Fatalf("%d answers, fast path %d", len(resps), fx.s.fastAnswers.Load()-before)
	}
	for name, got := range map[string]struct {
		code        int
		body, crang string
	}{
		"fast path": {resps[0].StatusCode, readBody(t, resps[0]), resps[0].Header.Get("Content-Range")},
		"net/http":  {rec.Code, rec.Body.String(), rec.Header().Get("Content-Range")},
	} {
		if got.code != 200 || got.body != string(fx.it.nar) || got.crang != "" {
			t.Errorf("%s: %d, %d bytes, Content-Range %q; want 200 and the whole NAR", name, got.code, len(got.body), got.crang)
		}
	}
}

// TestFastPathNARNotCached: a NAR the cache does not hold is left to
// net/http, which streams it from the Source through the verifier; one that
// does not match its narinfo is cut there and never reaches the cache, so
// the fast path never sends it either.
func TestFastPathNARNotCached(t *testing.T) {
	k := newKeys(t)
	good := makeItem(t, k, "good-1.0", map[string][]byte{"data": []byte("good\n")})
	bad := makeItem(t, k, "bad-1.0", map[string][]byte{"data": []byte("bad\n")})
	mem := NewMemSource()
	mem.Add(good.ni, good.nar)
	wrong := bytes.Clone(bad.nar)
	wrong[len(wrong)-20] ^= 1
	mem.Add(bad.ni, wrong)
	s := newServer(t, mem, func(c *Config) { c.Compressions = []string{} })
	url := start(t, s)
	for i := range 2 {
		before := s.fastAnswers.Load()
		resp, body, err := getFresh(t, http.MethodGet, url+"/nar/"+good.ni.StorePath.Base())
		if err != nil || resp.StatusCode != 200 || !bytes.Equal(body, good.nar) {
			t.Fatalf("good NAR, request %d: %v, %v", i, resp, err)
		}
		// The fast path counts an answer after its last byte left, so the
		// client may be first: wait for the count.
		if i == 1 {
			eventually(t, "the fast path's answer to the cached NAR", func() bool { return s.fastAnswers.Load() != before })
		} else if s.fastAnswers.Load() != before {
			t.Errorf("request %d: the fast path answered a NAR not cached yet", i)
		}
		// The client has the whole NAR before the handler commits it to the
		// cache, once its last byte is checked.
		eventually(t, "the good NAR cached", func() bool { return s.cfg.Cache.Contains("none/" + good.ni.StorePath.Base()) })
	}
	for i := range 2 {
		before := s.fastAnswers.Load()
		_, body, err := getFresh(t, http.MethodGet, url+"/nar/"+bad.ni.StorePath.Base())
		if err == nil || bytes.Equal(body, wrong) {
			t.Fatalf("bad NAR, request %d: %d bytes, %v; want a cut transfer", i, len(body), err)
		}
		if s.fastAnswers.Load() != before {
			t.Errorf("bad NAR, request %d: the fast path answered", i)
		}
	}
	if s.cfg.Cache.Contains("none/" + bad.ni.StorePath.Base()) {
		t.Fatal("a NAR that does not match its narinfo was cached")
	}
}
