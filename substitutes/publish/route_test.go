package publish

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/nixbase32"
)

// secret is the content of files outside the store and cache that no request
// may read.
const secret = "TOP-SECRET-DO-NOT-SERVE"

// dirFixture is a DirSource over a temporary tree with one item, its narinfo
// and a log, and secret files around it.
type dirFixture struct {
	src  *countingSource
	keys keys
	it   item
	base string
}

func newDirFixture(t *testing.T) dirFixture {
	t.Helper()
	k := newKeys(t)
	it := makeItem(t, k, "hello-2.12", map[string][]byte{"greeting": []byte("hello, world\n")})
	root := t.TempDir()
	ds := &DirSource{
		StoreDir:   store.GuixDir,
		RealDir:    filepath.Join(root, "store"),
		NarinfoDir: filepath.Join(root, "narinfo"),
		LogDir:     filepath.Join(root, "log"),
	}
	for _, d := range []string{ds.RealDir, ds.NarinfoDir, ds.LogDir, filepath.Join(root, "etc")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	base := it.ni.StorePath.Base()
	writeFile(t, filepath.Join(ds.RealDir, base, "greeting"), []byte("hello, world\n"))
	writeFile(t, filepath.Join(ds.NarinfoDir, it.ni.StorePath.HashPart()+".narinfo"), mustMarshal(t, it.ni))
	writeFile(t, filepath.Join(ds.LogDir, base), []byte("building hello\n"))
	for _, f := range []string{"etc/passwd", "secret", "store/secret", "narinfo/secret", "log/secret"} {
		writeFile(t, filepath.Join(root, f), []byte(secret))
	}
	return dirFixture{src: &countingSource{Source: ds}, keys: k, it: it, base: base}
}

func writeFile(t testing.TB, name string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustMarshal(t testing.TB, ni interface{ Marshal() ([]byte, error) }) []byte {
	t.Helper()
	b, err := ni.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRoutes sends well-formed and hostile request paths to the handler and
// checks the status, that bad ones never reach the Source, and that nothing
// outside the store is ever served.
func TestRoutes(t *testing.T) {
	fx := newDirFixture(t)
	s := newServer(t, fx.src, func(c *Config) { c.SigningKey = fx.keys.guix.Public.Marshal() })
	hash := fx.it.ni.StorePath.HashPart()
	other := strings.Repeat("0", 32)
	long := "/nar/" + hash + "-" + strings.Repeat("a", store.MaxNameLen+1)
	tests := []struct {
		name, method, target string
		status               int
		reachesSource        bool
	}{
		{"cache info", "GET", "/nix-cache-info", 200, false},
		{"cache info HEAD", "HEAD", "/nix-cache-info", 200, false},
		{"narinfo", "GET", "/" + hash + ".narinfo", 200, true},
		{"narinfo HEAD", "HEAD", "/" + hash + ".narinfo", 200, true},
		{"unknown narinfo", "GET", "/" + other + ".narinfo", 404, true},
		{"NAR", "GET", "/nar/" + fx.base, 200, true},
		{"NAR HEAD", "HEAD", "/nar/" + fx.base, 200, true},
		{"gzip NAR", "GET", "/nar/gzip/" + fx.base, 200, true},
		{"zstd NAR", "GET", "/nar/zstd/" + fx.base, 200, true},
		{"NAR of unknown hash", "GET", "/nar/" + other + "-hello-2.12", 404, true},
		{"NAR under another name", "GET", "/nar/" + hash + "-passwd", 404, true},
		{"log", "GET", "/log/" + fx.base, 200, true},
		{"missing log", "GET", "/log/" + other + "-x.drv", 404, true},
		{"signing key", "GET", "/signing-key.pub", 200, false},
		{"root", "GET", "/", 404, false},
		{"traversal", "GET", "/nar/../../etc/passwd", 404, false},
		{"encoded traversal", "GET", "/nar/%2e%2e/%2e%2e/etc/passwd", 404, false},
		{"encoded slashes", "GET", "/nar/..%2f..%2fetc%2fpasswd", 404, false},
		{"dot dot base", "GET", "/nar/%2e%2e", 400, false},
		{"traversal after compression", "GET", "/nar/gzip/../../../etc/passwd", 400, false},
		{"traversal in base", "GET", "/nar/" + fx.base + "/../../secret", 404, false},
		{"traversal after hash", "GET", "/nar/gzip/" + hash + "-x/../../secret", 400, false},
		{"log traversal", "GET", "/log/../secret", 400, false},
		{"log encoded traversal", "GET", "/log/%2e%2e%2fsecret", 400, false},
		{"log absolute", "GET", "/log//etc/passwd", 400, false},
		{"narinfo traversal", "GET", "/../" + hash + ".narinfo", 404, false},
		{"narinfo in subdirectory", "GET", "/nar/" + hash + ".narinfo", 400, false},
		{"short hash", "GET", "/" + hash[1:] + ".narinfo", 400, false},
		{"hash with e", "GET", "/" + "e" + hash[1:] + ".narinfo", 400, false},
		{"upper-case hash", "GET", "/" + strings.ToUpper(hash) + ".narinfo", 400, false},
		{"NUL in base", "GET", "/nar/" + fx.base + "%00", 400, false},
		{"base without name", "GET", "/nar/" + hash, 400, false},
		{"hidden name", "GET", "/nar/" + hash + "-.secret", 400, false},
		{"overlong name", "GET", long, 400, false},
		{"overlong URI", "GET", "/nar/" + strings.Repeat("a", MaxURILen), 414, false},
		{"unknown compression", "GET", "/nar/lzip/" + fx.base, 404, false},
		{"none spelled out", "GET", "/nar/none/" + fx.base, 404, false},
		{"POST", "POST", "/nix-cache-info", 405, false},
		{"PUT NAR", "PUT", "/nar/" + fx.base, 405, false},
		{"query ignored", "GET", "/nix-cache-info?x=../../etc/passwd", 200, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := fx.src.calls()
			w := httptest.NewRecorder()
			s.ServeHTTP(w, httptest.NewRequest(tt.method, tt.target, nil))
			if w.Code != tt.status {
				t.Errorf("%s %s: status %d, want %d; body %q", tt.method, tt.target, w.Code, tt.status, w.Body.String())
			}
			if reached := fx.src.calls() > before; reached != tt.reachesSource {
				t.Errorf("%s %s: reached the source = %v, want %v", tt.method, tt.target, reached, tt.reachesSource)
			}
			if strings.Contains(w.Body.String(), secret) {
				t.Errorf("%s %s served a file outside the store", tt.method, tt.target)
			}
			if tt.method == "HEAD" && w.Body.Len() != 0 {
				t.Errorf("HEAD %s has a body of %d bytes", tt.target, w.Body.Len())
			}
		})
	}
}

// TestRawRequests sends request lines that a Go client would not produce over
// a real connection, so that net/http's own parsing is part of the test.
func TestRawRequests(t *testing.T) {
	fx := newDirFixture(t)
	s := newServer(t, fx.src, nil)
	addr := strings.TrimPrefix(start(t, s), "http://")
	tests := []struct {
		name, line string
		status     int
	}{
		{"plain traversal", "GET /../../etc/passwd HTTP/1.1", 404},
		{"bad escape", "GET /nar/%zz HTTP/1.1", 400},
		{"absolute URI", "GET http://127.0.0.1/nar/../../etc/passwd HTTP/1.1", 404},
		{"backslashes", `GET /nar/..\..\etc\passwd HTTP/1.1`, 400},
		{"double encoding", "GET /nar/%252e%252e/secret HTTP/1.1", 404},
		{"overlong", "GET /" + strings.Repeat("x", 4*MaxURILen) + " HTTP/1.1", 414},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := fx.src.calls()
			status, body := rawRequest(t, addr, tt.line)
			if status != tt.status {
				t.Errorf("%s: status %d, want %d; body %q", tt.line, status, tt.status, body)
			}
			if fx.src.calls() != before {
				t.Errorf("%s reached the source", tt.line)
			}
			if strings.Contains(body, secret) {
				t.Errorf("%s served a file outside the store", tt.line)
			}
		})
	}
}

func rawRequest(t *testing.T, addr, line string) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := fmt.Fprintf(conn, "%s\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", line); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(bytes.TrimSpace(body))
}

// TestValidHashPartAgreesWithDecode checks the fast check of hash parts
// against nixbase32.Decode: every byte value at every position of a valid
// hash part is accepted by one exactly when by the other.
func TestValidHashPartAgreesWithDecode(t *testing.T) {
	valid := "0123456789abcdfghijklmnpqrsvwxy0"
	for pos := range store.HashLen {
		for c := range 256 {
			h := valid[:pos] + string([]byte{byte(c)}) + valid[pos+1:]
			_, decodeErr := nixbase32.Decode(h)
			if got := validHashPart(h); (got == nil) != (decodeErr == nil) {
				t.Fatalf("%q: validHashPart says %v, Decode %v", h, got, decodeErr)
			}
		}
	}
}
