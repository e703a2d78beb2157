package publish

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"net/http"
	"sync"
	"testing"
)

// recorder is an Observer that records what it is told.
type recorder struct {
	mu           sync.Mutex
	requests     map[string]int // "kind code" → count
	bytes        int64
	hits, misses int
}

func (r *recorder) SubstituteRequest(kind string, code int, n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests[fmt.Sprintf("%s %d", kind, code)]++
	r.bytes += n
}

func (r *recorder) NARCacheHit()  { r.mu.Lock(); r.hits++; r.mu.Unlock() }
func (r *recorder) NARCacheMiss() { r.mu.Lock(); r.misses++; r.mu.Unlock() }

// TestObserver makes requests of every kind, through the fast path and
// net/http, and checks that the Observer hears each one once, with its
// status and the bytes of its body, and the NAR cache's misses and hits.
func TestObserver(t *testing.T) {
	k := newKeys(t)
	it := makeItem(t, k, "hello-2.12", map[string][]byte{"a": bytes.Repeat([]byte("hello "), 5000)})
	mem := NewMemSource()
	mem.Add(it.ni, it.nar)
	rec := &recorder{requests: map[string]int{}}
	s := newServer(t, mem, func(c *Config) { c.Observer, c.Compressions = rec, []string{} })
	url := start(t, s)
	p := it.ni.StorePath
	var sent int64
	for _, req := range []struct {
		method, path string
		code         int
	}{
		{"GET", "/nix-cache-info", 200},                // fast path
		{"GET", "/nar/" + p.Base(), 200},               // streamed: a miss, cached on the way
		{"GET", "/nar/" + p.Base(), 200},               // cached: a hit, on the fast path
		{"GET", "/" + p.HashPart() + ".narinfo", 200},  // net/http, then memoised
		{"GET", "/" + p.HashPart() + ".narinfo", 200},  // fast path
		{"HEAD", "/" + p.HashPart() + ".narinfo", 200}, // fast path
		{"GET", "/log/" + p.Base(), 404},
		{"GET", "/signing-key.pub", 404},
		{"GET", "/nope", 404},
		{"POST", "/nix-cache-info", 405},
	} {
		resp, body, err := getFresh(t, req.method, url+req.path)
		if err != nil || resp.StatusCode != req.code {
			t.Fatalf("%s %s: %v, %v; want %d", req.method, req.path, resp, err, req.code)
		}
		sent += int64(len(body))
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	want := map[string]int{"nix-cache-info 200": 1, "narinfo 200": 3, "nar 200": 2, "log 404": 1, "key 404": 1,
		"other 404": 1, "other 405": 1}
	if !maps.Equal(rec.requests, want) {
		t.Errorf("observed %v\nwant %v", rec.requests, want)
	}
	if rec.bytes != sent {
		t.Errorf("observed %d bytes sent, the client read %d", rec.bytes, sent)
	}
	if rec.misses != 1 || rec.hits != 1 {
		t.Errorf("NAR cache: %d misses, %d hits; want 1 and 1", rec.misses, rec.hits)
	}
	if n := s.fastAnswers.Load(); n != 4 {
		t.Errorf("the fast path answered %d requests; the test means it to answer 4", n)
	}
}

// getFresh is get on a connection of its own, so that every request starts
// on the fast path.
func getFresh(t *testing.T, method, url string) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}
