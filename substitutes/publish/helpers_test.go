package publish

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/testlog"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/nar"
	"github.com/tbfg/tbfg-node/substitutes/narcache"
	"github.com/tbfg/tbfg-node/substitutes/narinfo"
	"github.com/tbfg/tbfg-node/substitutes/nixkey"
	"github.com/tbfg/tbfg-node/substitutes/pki"
)

// keys are the signing keys of a test builder.
type keys struct {
	guix *pki.SecretKey
	nix  *nixkey.SecretKey
}

func newKeys(t testing.TB) keys {
	t.Helper()
	g, err := pki.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := nixkey.Generate("tbfg-test-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	return keys{g, n}
}

func (k keys) acl() *pki.ACL { return &pki.ACL{Keys: []pki.PublicKey{k.guix.Public}} }

// item is a store item of a test: its signed narinfo and its NAR.
type item struct {
	ni  *narinfo.Narinfo
	nar []byte
}

// makeItem archives a directory holding files and makes a signed narinfo for
// it as a builder would, with URL blocks pointing at the builder.
func makeItem(t testing.TB, k keys, name string, files map[string][]byte) item {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for f, data := range files {
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := nar.Dump(&buf, dir); err != nil {
		t.Fatal(err)
	}
	sum, err := nar.HashReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	p, err := store.GuixDir.SourcePath(name, store.Hash{Algo: store.SHA256, Digest: sum.SHA256[:]}, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	return item{signedNarinfo(t, k, p, sum.NarHash(), uint64(sum.Size), nil, ""), buf.Bytes()}
}

// signedNarinfo makes a narinfo in Guix's layout signed with both keys.
func signedNarinfo(t testing.TB, k keys, p store.Path, narHash string, size uint64, refs []string, deriver string) *narinfo.Narinfo {
	t.Helper()
	ni := &narinfo.Narinfo{
		StorePath: p, NarHash: narHash, NarSize: size, References: refs, Deriver: deriver,
		System: "x86_64-linux", Layout: narinfo.LayoutGuix,
		Files: []narinfo.File{{URL: "nar/zstd/" + p.Base(), Compression: "zstd", FileSize: 1}},
	}
	if err := narinfo.SignGuix(ni, "builder.example", k.guix); err != nil {
		t.Fatal(err)
	}
	if err := narinfo.SignNix(ni, k.nix); err != nil {
		t.Fatal(err)
	}
	return ni
}

// countingSource counts the calls into a Source and can replace NARs.
type countingSource struct {
	Source
	narinfos, nars, logs atomic.Int64
	// tamper, when set, changes every NAR the source returns.
	tamper func([]byte) []byte
	// noNAR makes OpenNAR fail, to show what is served from the cache.
	noNAR atomic.Bool
}

func (c *countingSource) Narinfo(ctx context.Context, h string) (*narinfo.Narinfo, error) {
	c.narinfos.Add(1)
	return c.Source.Narinfo(ctx, h)
}

func (c *countingSource) OpenNAR(ctx context.Context, p store.Path) (io.ReadCloser, error) {
	c.nars.Add(1)
	if c.noNAR.Load() {
		return nil, errors.New("source unavailable")
	}
	rc, err := c.Source.OpenNAR(ctx, p)
	if err != nil || c.tamper == nil {
		return rc, err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(c.tamper(data))), nil
}

func (c *countingSource) Log(ctx context.Context, base string) (io.ReadCloser, error) {
	c.logs.Add(1)
	return c.Source.Log(ctx, base)
}

func (c *countingSource) calls() int64 { return c.narinfos.Load() + c.nars.Load() + c.logs.Load() }

// testLogger sends a component's log to t.Log.
func testLogger(t testing.TB) *slog.Logger { return testlog.New(t, "") }

// newServer makes a Server over src with a fresh cache; change edits the
// Config first.
func newServer(t testing.TB, src Source, change func(*Config)) *Server {
	t.Helper()
	cache, err := narcache.Open(filepath.Join(t.TempDir(), "cache"), narcache.Options{MaxBytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cache.Close() })
	cfg := Config{StoreDir: store.GuixDir, Source: src, Cache: cache, Logger: testLogger(t)}
	if change != nil {
		change(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// start runs s on 127.0.0.1 until the test ends and returns its URL.
func start(t testing.TB, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// get fetches url and returns the response with its whole body; a transfer
// error is returned with what arrived.
func get(t testing.TB, method, url string) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
