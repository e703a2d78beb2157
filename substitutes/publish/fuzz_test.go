package publish

import (
	"bufio"
	"net/http"
	"strings"
	"testing"

	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/substitutes/narcache"
)

// FuzzParseRoute feeds request paths to the router: it must not panic, and
// whatever it accepts must name only validated things that cannot leave the
// store or the cache.
func FuzzParseRoute(f *testing.F) {
	base := "4ciba82yf27mwk6bvsy7ndxqg9jllgdy-hello-2.12"
	for _, s := range []string{
		"/nix-cache-info", "/signing-key.pub", "/" + base[:32] + ".narinfo",
		"/nar/" + base, "/nar/gzip/" + base, "/nar/zstd/" + base, "/log/" + base,
		"/nar/../../etc/passwd", "/nar/gzip/../" + base, "/log/..", "/..narinfo",
		"/nar//", "/nar/zstd/" + base + "/x", "//" + base[:32] + ".narinfo", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		rt, err := parseRoute(path)
		if err != nil {
			if rt != (route{}) {
				t.Errorf("%q: error %v with route %+v", path, err, rt)
			}
			return
		}
		switch rt.kind {
		case routeNarinfo:
			if validHashPart(rt.hash) != nil || path != "/"+rt.hash+".narinfo" {
				t.Errorf("%q: accepted hash part %q", path, rt.hash)
			}
		case routeNAR:
			checkBase(t, path, rt.base)
			if err := narcache.ValidKey(narcache.Key(rt.comp, rt.base)); err != nil {
				t.Errorf("%q: cache key: %v", path, err)
			}
			if rt.comp != CompressionNone && !knownCompression(rt.comp) {
				t.Errorf("%q: compression %q", path, rt.comp)
			}
		case routeLog:
			checkBase(t, path, rt.base)
		case routeCacheInfo, routeSigningKey:
		default:
			t.Errorf("%q: route kind %d", path, rt.kind)
		}
	})
}

func checkBase(t *testing.T, path, base string) {
	t.Helper()
	if err := store.ValidateBase(base); err != nil || strings.ContainsAny(base, "/\x00") || strings.HasPrefix(base, ".") {
		t.Errorf("%q: accepted base name %q", path, base)
	}
}

// FuzzParseFastRequest feeds request headers to the fast path's parser: it
// must not panic, and every request it accepts must be one net/http's own
// parser reads as the same GET or HEAD of the same narinfo or NAR (whose
// route parseRoute reads the same), on a connection
// kept alive, with a Host and no body.
func FuzzParseFastRequest(f *testing.F) {
	hash := "4ciba82yf27mwk6bvsy7ndxqg9jllgdy"
	for _, s := range []string{
		"GET /" + hash + ".narinfo HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /nix-cache-info HTTP/1.1\r\nHost: localhost:8761\r\n\r\n",
		"HEAD /" + hash + ".narinfo HTTP/1.1\r\nHost: [::1]:8080\r\nConnection: Keep-Alive\r\n\r\n",
		"GET /" + hash + ".narinfo HTTP/1.1\r\nHost: x\r\nUser-Agent: GNU Guile\r\nAccept: */*\r\n\r\n",
		"GET /" + hash + ".narinfo HTTP/1.1\r\nhost: a\r\nHOST: b\r\n\r\n",
		"GET /" + hash + ".narinfo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET /" + hash + ".narinfo?x HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /" + hash + ".narinfo HTTP/1.0\r\n\r\n",
		"GET /" + hash + ".narinfo HTTP/1.1\r\nHost: x\r\nX: \x01\r\n\r\n",
		"GET /nar/" + hash + "-hello-2.12 HTTP/1.1\r\nHost: x\r\n\r\n",
		"HEAD /nar/zstd/" + hash + "-gcc-toolchain+x=1 HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\r\n\r\n",
		"GET /nar/gzip/" + hash + "-a?b HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /nar/" + hash + "-a%3fb HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /nar/lzip/" + hash + "-a HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /nar/" + hash + "-a/../b HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		n := headerLen([]byte(raw))
		if n == 0 {
			return
		}
		raw = raw[:n]
		req := parseFastRequest([]byte(raw))
		if req == nil {
			return
		}
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		if err != nil {
			t.Fatalf("%q accepted, net/http refuses it: %v", raw, err)
		}
		method := http.MethodGet
		if req.head {
			method = http.MethodHead
		}
		switch {
		case req.size != len(raw):
			t.Errorf("%q: size %d", raw, req.size)
		case r.Method != method || r.URL.Path != req.asHTTP().URL.Path || r.URL.RawQuery != "" || r.RequestURI != r.URL.Path:
			t.Errorf("%q: fast path reads %s %s, net/http %s %s", raw, method, req.asHTTP().URL.Path, r.Method, r.RequestURI)
		case !r.ProtoAtLeast(1, 1) || r.Close || r.ContentLength != 0 || len(r.TransferEncoding) != 0:
			t.Errorf("%q: net/http reads %s, close %v, length %d, %v", raw, r.Proto, r.Close, r.ContentLength, r.TransferEncoding)
		case len(r.Header.Values("Host")) != 0 || r.Host == "" || r.Header.Get("Expect") != "" || r.Header.Get("Upgrade") != "":
			t.Errorf("%q: net/http reads host %q, header %v", raw, r.Host, r.Header)
		}
		switch {
		case req.nar.kind == routeNAR:
			if rt, err := parseRoute(r.URL.Path); err != nil || rt != req.nar {
				t.Errorf("%q: fast path reads route %+v, the server %+v, %v", raw, req.nar, rt, err)
			}
		case !req.cacheInfo:
			if err := validHashPart(req.hash); err != nil {
				t.Errorf("%q: %v", raw, err)
			}
		}
	})
}
