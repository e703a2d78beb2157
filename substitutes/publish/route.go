package publish

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/nixbase32"
)

// MaxURILen is the longest request URI the server reads, in bytes. The
// longest valid one, /nar/<compression>/<base>, is under 300.
const MaxURILen = 1024

// Compression names in URLs and narinfos.
const (
	CompressionNone = "none"
	CompressionGzip = "gzip"
	CompressionZstd = "zstd"
)

// compressions are the compressions the server can produce.
var compressions = []string{CompressionGzip, CompressionZstd}

// routeKind says which resource a request names.
type routeKind int

const (
	routeCacheInfo routeKind = iota + 1
	routeNarinfo
	routeNAR
	routeLog
	routeSigningKey
)

// route is a parsed, validated request path.
type route struct {
	kind routeKind
	hash string // hash part, for routeNarinfo
	comp string // compression, for routeNAR
	base string // store item base name, for routeNAR and routeLog
}

// requestError is a request the server refuses, with its HTTP status and a
// message for the client.
type requestError struct {
	status int
	msg    string
}

func (e *requestError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &requestError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

func notFoundRoute(format string, args ...any) error {
	return &requestError{http.StatusNotFound, fmt.Sprintf(format, args...)}
}

// parseRoute reads a decoded URL path. Every name it returns has been
// validated: a hash part is 32 nix-base32 characters, a base name passes
// store.ValidateBase, a compression is one the server knows.
func parseRoute(path string) (route, error) {
	switch path {
	case "/nix-cache-info":
		return route{kind: routeCacheInfo}, nil
	case "/signing-key.pub":
		return route{kind: routeSigningKey}, nil
	}
	if rest, ok := strings.CutPrefix(path, "/nar/"); ok {
		return parseNARRoute(rest)
	}
	if rest, ok := strings.CutPrefix(path, "/log/"); ok {
		if err := store.ValidateBase(rest); err != nil {
			return route{}, badRequest("log %q: %v", rest, err)
		}
		return route{kind: routeLog, base: rest}, nil
	}
	if hash, ok := strings.CutSuffix(path, ".narinfo"); ok && strings.LastIndexByte(hash, '/') == 0 {
		hash = hash[1:]
		if err := validHashPart(hash); err != nil {
			return route{}, badRequest("%v", err)
		}
		return route{kind: routeNarinfo, hash: hash}, nil
	}
	return route{}, notFoundRoute("no such resource")
}

// parseNARRoute reads what follows /nar/: <base> or <compression>/<base>.
func parseNARRoute(rest string) (route, error) {
	comp, base, found := strings.Cut(rest, "/")
	if !found {
		comp, base = CompressionNone, rest
	} else if !knownCompression(comp) {
		return route{}, notFoundRoute("unknown compression %q", comp)
	}
	if err := store.ValidateBase(base); err != nil {
		return route{}, badRequest("NAR %q: %v", base, err)
	}
	return route{kind: routeNAR, comp: comp, base: base}, nil
}

func knownCompression(c string) bool {
	for _, k := range compressions {
		if c == k {
			return true
		}
	}
	return false
}

// validHashPart checks a store path's hash part: 32 nix-base32 characters
// that decode to 20 bytes. 32 characters carry exactly 160 bits, so any 32
// characters of the alphabet decode; the check runs on every narinfo
// request, and decoding (which allocates) is left to the error message.
func validHashPart(h string) error {
	if len(h) != store.HashLen {
		return badRequest("hash part %q: %d characters, want %d", h, len(h), store.HashLen)
	}
	for i := range len(h) {
		if !base32Digits[h[i]] {
			_, err := nixbase32.Decode(h)
			return badRequest("hash part %q: %v", h, err)
		}
	}
	return nil
}

// base32Digits marks the characters of the nix-base32 alphabet.
var base32Digits = func() (t [256]bool) {
	for _, c := range []byte("0123456789abcdfghijklmnpqrsvwxyz") {
		t[c] = true
	}
	return t
}()
