package publish

import (
	"io"
	"net/http"
)

// Observer is told what the server answers, by the fast path and net/http
// alike: a node counts it in its metrics. Its methods are called on the
// request's goroutine, so they must be quick and safe for concurrent use.
type Observer interface {
	// SubstituteRequest is called once per answered request with its kind
	// (one of the Kind constants), HTTP status code and the bytes of body
	// sent.
	SubstituteRequest(kind string, code int, bytes int64)
	// NARCacheHit is called for a NAR sent from the NAR cache.
	NARCacheHit()
	// NARCacheMiss is called for a NAR not in the cache, streamed from the
	// Source.
	NARCacheMiss()
}

// The kinds of requests an Observer is told of.
const (
	KindNarinfo   = "narinfo"
	KindNAR       = "nar"
	KindLog       = "log"
	KindCacheInfo = "nix-cache-info"
	KindKey       = "key"
	KindOther     = "other" // refused before its resource was known
)

// kindOf names the kind of a route.
func kindOf(k routeKind) string {
	switch k {
	case routeNarinfo:
		return KindNarinfo
	case routeNAR:
		return KindNAR
	case routeLog:
		return KindLog
	case routeCacheInfo:
		return KindCacheInfo
	case routeSigningKey:
		return KindKey
	}
	return KindOther
}

// countingWriter records the status and body bytes of an answer for the
// Observer. It keeps io.ReaderFrom, so that NARs still go out with sendfile.
type countingWriter struct {
	http.ResponseWriter
	code  int
	bytes int64
}

func (c *countingWriter) WriteHeader(code int) {
	if c.code == 0 {
		c.code = code
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *countingWriter) Write(b []byte) (int, error) {
	if c.code == 0 {
		c.code = http.StatusOK
	}
	n, err := c.ResponseWriter.Write(b)
	c.bytes += int64(n)
	return n, err
}

// ReadFrom implements io.ReaderFrom through the wrapped writer's, when it
// has one (net/http's does).
func (c *countingWriter) ReadFrom(r io.Reader) (int64, error) {
	if c.code == 0 {
		c.code = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := c.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(struct{ io.Writer }{c.ResponseWriter}, r)
	}
	c.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// status is the answer's status: 200 when the handler wrote nothing.
func (c *countingWriter) status() int {
	if c.code == 0 {
		return http.StatusOK
	}
	return c.code
}
