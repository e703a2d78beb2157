package publish

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/substitutes/narcache"
	"github.com/tbfg/tbfg-node/substitutes/narinfo"
	"github.com/tbfg/tbfg-node/substitutes/nixkey"
	"github.com/tbfg/tbfg-node/substitutes/pki"
)

func decompress(t testing.TB, comp string, data []byte) []byte {
	t.Helper()
	var r io.Reader
	switch comp {
	case CompressionNone:
		return data
	case CompressionGzip:
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("gzip: %v", err)
		}
		r = zr
	case CompressionZstd:
		zr, err := zstd.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("zstd: %v", err)
		}
		defer zr.Close()
		r = zr
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", comp, err)
	}
	return out
}

// fetchNarinfo gets and parses /<hash>.narinfo.
func fetchNarinfo(t testing.TB, url string, p store.Path) (*narinfo.Narinfo, []byte) {
	t.Helper()
	resp, body, err := get(t, "GET", url+"/"+p.HashPart()+".narinfo")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("narinfo of %s: %v %v %q", p, resp, err, body)
	}
	ni, err := narinfo.Parse(body, store.GuixDir)
	if err != nil {
		t.Fatalf("served narinfo does not parse: %v\n%s", err, body)
	}
	return ni, body
}

func compressionsOf(ni *narinfo.Narinfo) []string {
	var out []string
	for _, f := range ni.Files {
		out = append(out, f.Compression)
	}
	return out
}

// TestNarinfoAndNARs follows a client through the life of an item: the first
// narinfo offers only the uncompressed NAR, later ones every compression with
// its true FileSize; the signatures verify throughout; every variant decodes
// to the NAR; and once cached, NARs are served without the Source.
func TestNarinfoAndNARs(t *testing.T) {
	k := newKeys(t)
	it := makeItem(t, k, "hello-2.12", map[string][]byte{"a": bytes.Repeat([]byte("hello "), 50000), "b": []byte("x")})
	mem := NewMemSource()
	mem.Add(it.ni, it.nar)
	src := &countingSource{Source: mem}
	s := newServer(t, src, func(c *Config) { c.TTL = 90 * time.Second })
	url := start(t, s)
	p := it.ni.StorePath

	first, _ := fetchNarinfo(t, url, p)
	if got := compressionsOf(first); len(got) < 1 || got[0] != CompressionNone {
		t.Fatalf("first narinfo offers %v, want none first", got)
	}
	if f := first.Files[0]; f.URL != "nar/"+p.Base() || f.FileSize != it.ni.NarSize {
		t.Errorf("uncompressed block %+v", f)
	}
	var ni *narinfo.Narinfo
	var raw []byte
	eventually(t, "compressed variants in the narinfo", func() bool {
		ni, raw = fetchNarinfo(t, url, p)
		return len(ni.Files) == 3
	})
	if got := strings.Join(compressionsOf(ni), ","); got != "none,gzip,zstd" {
		t.Errorf("compressions %s, want none,gzip,zstd", got)
	}
	checkOwnSignatures(t, k, it.ni, ni)
	if !bytes.Contains(raw, []byte("URL: nar/zstd/"+p.Base()+"\n")) {
		t.Errorf("narinfo does not point at this server's zstd NAR:\n%s", raw)
	}
	src.noNAR.Store(true)
	for _, f := range ni.Files {
		resp, body, err := get(t, "GET", url+"/"+f.URL)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %v", f.URL, resp, err)
		}
		if uint64(len(body)) != f.FileSize || resp.ContentLength != int64(f.FileSize) {
			t.Errorf("%s: %d bytes, Content-Length %d, narinfo FileSize %d", f.URL, len(body), resp.ContentLength, f.FileSize)
		}
		if !bytes.Equal(decompress(t, f.Compression, body), it.nar) {
			t.Errorf("%s does not decode to the NAR", f.URL)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=90" {
			t.Errorf("%s: Cache-Control %q", f.URL, cc)
		}
	}
}

// checkOwnSignatures checks that a served narinfo says what the builder
// signed and that its signatures verify with this project's own verifiers
// of Guix and Nix signatures: a round trip through the server, not interop
// (TestNixServedNarinfosPassGuixSubstitute and the nix copy tests are).
func checkOwnSignatures(t *testing.T, k keys, orig, served *narinfo.Narinfo) {
	t.Helper()
	if !bytes.Equal(served.Signed, orig.Signed) {
		t.Errorf("signed part changed:\n%s\nwant:\n%s", served.Signed, orig.Signed)
	}
	if st := narinfo.VerifyGuix(served, k.acl()); st != pki.Valid {
		t.Errorf("VerifyGuix of the served narinfo: %v", st)
	}
	if !narinfo.VerifyNix(served, []nixkey.PublicKey{k.nix.Public()}) {
		t.Errorf("VerifyNix of the served narinfo failed")
	}
}

// TestStreamedNARs fetches every variant before anything is cached: each is
// streamed from the Source, decodes to the NAR, and is cached on the way.
func TestStreamedNARs(t *testing.T) {
	k := newKeys(t)
	it := makeItem(t, k, "data", map[string][]byte{"f": bytes.Repeat([]byte("0123456789"), 100000)})
	mem := NewMemSource()
	mem.Add(it.ni, it.nar)
	src := &countingSource{Source: mem}
	s := newServer(t, src, nil)
	url := start(t, s)
	base := it.ni.StorePath.Base()
	for _, comp := range []string{CompressionNone, CompressionGzip, CompressionZstd} {
		t.Run(comp, func(t *testing.T) {
			path := "/nar/" + comp + "/" + base
			if comp == CompressionNone {
				path = "/nar/" + base
			}
			before := src.nars.Load()
			resp, body, err := get(t, "GET", url+path)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("%s: %v %v", path, resp, err)
			}
			if src.nars.Load() == before {
				t.Errorf("%s did not come from the source", path)
			}
			if !bytes.Equal(decompress(t, comp, body), it.nar) {
				t.Errorf("%s does not decode to the NAR", path)
			}
			if !s.cfg.Cache.Contains(narcache.Key(comp, base)) {
				t.Errorf("%s not cached after streaming", path)
			}
			head, _, err := get(t, "HEAD", url+path)
			if err != nil || head.ContentLength != int64(len(body)) {
				t.Errorf("HEAD %s: Content-Length %d, err %v; GET gave %d bytes", path, head.ContentLength, err, len(body))
			}
		})
	}
}

// TestTamperedNARIsCut has the Source return NARs that differ from the
// narinfo: the client never receives a complete NAR, and nothing is cached.
func TestTamperedNARIsCut(t *testing.T) {
	k := newKeys(t)
	it := makeItem(t, k, "victim", map[string][]byte{"f": bytes.Repeat([]byte("payload "), 20000)})
	tampers := map[string]func([]byte) []byte{
		"flipped": func(b []byte) []byte { b[len(b)/2] ^= 0x20; return b },
		"short":   func(b []byte) []byte { return b[:len(b)-8] },
		"long":    func(b []byte) []byte { return append(b, make([]byte, 8)...) },
	}
	for name, tamper := range tampers {
		t.Run(name, func(t *testing.T) {
			mem := NewMemSource()
			mem.Add(it.ni, it.nar)
			src := &countingSource{Source: mem, tamper: tamper}
			s := newServer(t, src, nil)
			url := start(t, s)
			base := it.ni.StorePath.Base()
			for _, path := range []string{"/nar/" + base, "/nar/gzip/" + base, "/nar/zstd/" + base} {
				resp, body, err := get(t, "GET", url+path)
				if err == nil {
					t.Errorf("%s: complete transfer (status %v, %d bytes) of a tampered NAR", path, resp.StatusCode, len(body))
				}
				if !strings.Contains(path, "/gzip/") && !strings.Contains(path, "/zstd/") && len(body) >= len(it.nar) {
					t.Errorf("%s: %d bytes received", path, len(body))
				}
			}
			// A narinfo request queues caching; wait for the job to end.
			fetchNarinfo(t, url, it.ni.StorePath)
			eventually(t, "the compression job", func() bool {
				s.mu.Lock()
				defer s.mu.Unlock()
				return len(s.pending) == 0 && len(s.jobs) == 0
			})
			if n := s.cfg.Cache.Len(); n != 0 {
				t.Errorf("tampered NAR cached: %v", s.cfg.Cache.Keys())
			}
			if ni, _ := fetchNarinfo(t, url, it.ni.StorePath); len(ni.Files) != 1 {
				t.Errorf("narinfo offers %v for a NAR that never verified", compressionsOf(ni))
			}
		})
	}
}

// TestCacheInfoKeyLogAndTTLs checks the small resources and the Cache-Control
// of hits and misses.
func TestCacheInfoKeyLogAndTTLs(t *testing.T) {
	fx := newDirFixture(t)
	key := fx.keys.guix.Public.Marshal()
	s := newServer(t, fx.src, func(c *Config) {
		c.SigningKey, c.Priority, c.TTL, c.NegativeTTL = key, 42, time.Hour, 5*time.Minute
	})
	url := start(t, s)
	other := strings.Repeat("1", 32)
	tests := []struct {
		path, body, cacheControl string
		status                   int
	}{
		{"/nix-cache-info", "StoreDir: /gnu/store\nWantMassQuery: 1\nPriority: 42\n", "public, max-age=3600", 200},
		{"/signing-key.pub", string(key), "public, max-age=3600", 200},
		{"/log/" + fx.base, "building hello\n", "public, max-age=3600", 200},
		{"/" + other + ".narinfo", "narinfo not found\n", "public, max-age=300", 404},
		{"/nar/" + other + "-x", "NAR not found\n", "public, max-age=300", 404},
		{"/nar/lzip/" + fx.base, "unknown compression \"lzip\"\n", "no-store", 404},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, body, err := get(t, "GET", url+tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status || string(body) != tt.body {
				t.Errorf("status %d body %q, want %d %q", resp.StatusCode, body, tt.status, tt.body)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != tt.cacheControl {
				t.Errorf("Cache-Control %q, want %q", cc, tt.cacheControl)
			}
			if tt.status == 200 && resp.Header.Get("Content-Length") != strconv.Itoa(len(tt.body)) {
				t.Errorf("Content-Length %q", resp.Header.Get("Content-Length"))
			}
		})
	}
}

// TestGzipLog serves a log that the builder kept compressed.
func TestGzipLog(t *testing.T) {
	dir := t.TempDir()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write([]byte("compiling...\ndone\n"))
	_ = zw.Close()
	base := strings.Repeat("2", 32) + "-x.drv"
	writeFile(t, dir+"/"+base+".gz", buf.Bytes())
	src := &DirSource{StoreDir: store.GuixDir, RealDir: dir, NarinfoDir: dir, LogDir: dir}
	url := start(t, newServer(t, src, nil))
	resp, body, err := get(t, "GET", url+"/log/"+base)
	if err != nil || resp.StatusCode != 200 || string(body) != "compiling...\ndone\n" {
		t.Errorf("log: %v %v %q", resp, err, body)
	}
}

// TestNewRejectsBadConfig checks New's messages.
func TestNewRejectsBadConfig(t *testing.T) {
	cache, err := narcache.Open(t.TempDir(), narcache.Options{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	src := NewMemSource()
	for name, cfg := range map[string]Config{
		"relative store":      {StoreDir: "gnu/store", Source: src, Cache: cache},
		"no source":           {StoreDir: store.GuixDir, Cache: cache},
		"no cache":            {StoreDir: store.GuixDir, Source: src},
		"lzip":                {StoreDir: store.GuixDir, Source: src, Cache: cache, Compressions: []string{"lzip"}},
		"repeated":            {StoreDir: store.GuixDir, Source: src, Cache: cache, Compressions: []string{"zstd", "zstd"}},
		"none as compression": {StoreDir: store.GuixDir, Source: src, Cache: cache, Compressions: []string{"none"}},
		"negative TTL":        {StoreDir: store.GuixDir, Source: src, Cache: cache, TTL: -time.Second},
	} {
		if _, err := New(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: New = %v, want ErrConfig", name, err)
		}
	}
}

// blockingSource serves a NAR that never ends until the request is
// cancelled.
type blockingSource struct {
	*MemSource
	started chan struct{}
}

func (b *blockingSource) OpenNAR(ctx context.Context, _ store.Path) (io.ReadCloser, error) {
	close(b.started)
	return io.NopCloser(ctxBlockReader{ctx}), nil
}

type ctxBlockReader struct{ ctx context.Context }

func (r ctxBlockReader) Read(p []byte) (int, error) {
	<-r.ctx.Done()
	return 0, r.ctx.Err()
}

// TestShutdownCutsStuckTransfers checks that Serve returns within its
// shutdown timeout while a transfer hangs, and then refuses connections.
func TestShutdownCutsStuckTransfers(t *testing.T) {
	k := newKeys(t)
	it := makeItem(t, k, "stuck", map[string][]byte{"f": []byte("x")})
	src := &blockingSource{MemSource: NewMemSource(), started: make(chan struct{})}
	src.Add(it.ni, it.nar)
	s := newServer(t, src, func(c *Config) { c.ShutdownTimeout = 200 * time.Millisecond })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	got := make(chan error, 1)
	go func() {
		_, _, err := get(t, "GET", "http://"+ln.Addr().String()+"/nar/"+it.ni.StorePath.Base())
		got <- err
	}()
	<-src.started
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return after shutdown")
	}
	if err := <-got; err == nil {
		t.Error("the stuck transfer completed")
	}
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Error("still accepting connections after Serve returned")
	}
}

// TestOldLayoutServedVerbatim checks that a narinfo whose URL blocks are
// signed (Guix before 1.2) is served unchanged, so it still verifies.
func TestOldLayoutServedVerbatim(t *testing.T) {
	k := newKeys(t)
	it := makeItem(t, k, "old", map[string][]byte{"f": []byte("old layout")})
	ni := *it.ni
	ni.Layout, ni.Signed, ni.Signatures, ni.Sigs = narinfo.LayoutGuixOld, nil, nil, nil
	ni.Files = []narinfo.File{{URL: "nar/gzip/" + ni.StorePath.Base(), Compression: "gzip", FileSize: 1}}
	if err := narinfo.SignGuix(&ni, "old.example", k.guix); err != nil {
		t.Fatal(err)
	}
	mem := NewMemSource()
	mem.Add(&ni, it.nar)
	url := start(t, newServer(t, mem, nil))
	served, raw := fetchNarinfo(t, url, ni.StorePath)
	if want := mustMarshal(t, &ni); !bytes.Equal(raw, want) {
		t.Errorf("served:\n%s\nwant:\n%s", raw, want)
	}
	if st := narinfo.VerifyGuix(served, k.acl()); st != pki.Valid {
		t.Errorf("VerifyGuix: %v", st)
	}
	resp, body, err := get(t, "GET", url+"/"+served.Files[0].URL)
	if err != nil || resp.StatusCode != 200 || !bytes.Equal(decompress(t, CompressionGzip, body), it.nar) {
		t.Errorf("GET %s: %v %v", served.Files[0].URL, resp, err)
	}
}

// TestEvictedVariant removes a compressed NAR from the cache after its
// narinfo listed it: a client that follows the old narinfo still gets the
// NAR, streamed, and the narinfo lists the variant again once it is back.
func TestEvictedVariant(t *testing.T) {
	k := newKeys(t)
	it := makeItem(t, k, "evicted", map[string][]byte{"f": bytes.Repeat([]byte("evict me "), 10000)})
	mem := NewMemSource()
	mem.Add(it.ni, it.nar)
	s := newServer(t, mem, nil)
	url := start(t, s)
	p := it.ni.StorePath
	var listed *narinfo.Narinfo
	eventually(t, "every variant", func() bool { listed, _ = fetchNarinfo(t, url, p); return len(listed.Files) == 3 })
	key := narcache.Key(CompressionZstd, p.Base())
	if err := s.cfg.Cache.Remove(key); err != nil {
		t.Fatal(err)
	}
	resp, body, err := get(t, "GET", url+"/nar/zstd/"+p.Base())
	if err != nil || resp.StatusCode != 200 || !bytes.Equal(decompress(t, CompressionZstd, body), it.nar) {
		t.Fatalf("zstd NAR after eviction: %v %v", resp, err)
	}
	if uint64(len(body)) != listed.Files[2].FileSize {
		t.Errorf("streamed zstd NAR has %d bytes, the narinfo said %d", len(body), listed.Files[2].FileSize)
	}
	eventually(t, "zstd listed again", func() bool {
		ni, _ := fetchNarinfo(t, url, p)
		return len(ni.Files) == 3 && s.cfg.Cache.Contains(key)
	})
	ni, _ := fetchNarinfo(t, url, p)
	rc, size, err := s.cfg.Cache.Get(key)
	if err == nil {
		rc.Close()
	}
	if err != nil || ni.Files[2].FileSize != uint64(size) {
		t.Errorf("zstd FileSize %d, cached entry %d (%v)", ni.Files[2].FileSize, size, err)
	}
}
