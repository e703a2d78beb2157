package publish

import (
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
