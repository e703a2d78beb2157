package publish

import (
	"bytes"
	"net/http"
	"net/url"
)

// fastRequest is a request the fast path may answer.
type fastRequest struct {
	head      bool
	cacheInfo bool   // /nix-cache-info
	nar       route  // else /nar/[<compression>/]<base>, when its kind is routeNAR
	hash      string // else /<hash>.narinfo
	size      int    // bytes of the request in the buffer
}

// headerLen is the length of the request header at the start of b, through
// its empty line, or 0 if b holds no empty line yet. Lines may end with a
// bare LF, which net/http accepts: parseFastRequest refuses those requests,
// and they go to net/http at once instead of waiting for a CRLF.
func headerLen(b []byte) int {
	i := bytes.Index(b, []byte("\n\r\n"))
	if j := bytes.Index(b, []byte("\n\n")); j >= 0 && (i < 0 || j < i) {
		return j + 2
	}
	if i >= 0 {
		return i + 3
	}
	return 0
}

// parseFastRequest parses a whole request header (ending with an empty
// line) and returns it when the fast path may answer it: HTTP/1.1, GET or
// HEAD of /nix-cache-info, /<hash>.narinfo or a NAR in plain form (no
// escapes, no query), well-formed header fields, exactly
// one Host, no body, no Expect, Upgrade or Connection other than
// keep-alive. Anything else is nil, for net/http to answer (or refuse) as it
// always does.
func parseFastRequest(h []byte) *fastRequest {
	if !bytes.HasSuffix(h, []byte("\r\n\r\n")) {
		return nil
	}
	line, rest, _ := bytes.Cut(h, []byte("\r\n"))
	req := &fastRequest{size: len(h)}
	var target []byte
	switch {
	case bytes.HasPrefix(line, []byte("GET ")):
		target = line[4:]
	case bytes.HasPrefix(line, []byte("HEAD ")):
		target, req.head = line[5:], true
	default:
		return nil
	}
	target, ok := bytes.CutSuffix(target, []byte(" HTTP/1.1"))
	switch {
	case !ok:
		return nil
	case string(target) == "/nix-cache-info":
		req.cacheInfo = true
	case fastNarinfoTarget(target):
		req.hash = string(target[1:33])
	case bytes.HasPrefix(target, []byte("/nar/")) && fastPlainTarget(target):
		rt, err := parseNARRoute(string(target[len("/nar/"):]))
		if err != nil {
			return nil
		}
		req.nar = rt
	default:
		return nil
	}
	if !fastHeaderFields(rest) {
		return nil
	}
	return req
}

// asHTTP is the request as ServeHTTP would see it, for Server.observe.
func (req *fastRequest) asHTTP() *http.Request {
	r := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/nix-cache-info"}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
	if req.head {
		r.Method = http.MethodHead
	}
	switch {
	case req.nar.kind == routeNAR && req.nar.comp == CompressionNone:
		r.URL.Path = "/nar/" + req.nar.base
	case req.nar.kind == routeNAR:
		r.URL.Path = "/nar/" + req.nar.comp + "/" + req.nar.base
	case !req.cacheInfo:
		r.URL.Path = "/" + req.hash + ".narinfo"
	}
	r.RequestURI = r.URL.Path
	return r
}

// fastNarinfoTarget reports whether target is /<32 nix-base32>.narinfo.
func fastNarinfoTarget(t []byte) bool {
	if len(t) != 1+32+len(".narinfo") || t[0] != '/' || string(t[33:]) != ".narinfo" {
		return false
	}
	for _, c := range t[1:33] {
		if !base32Digits[c] {
			return false
		}
	}
	return true
}

// fastPlainTarget reports whether the request target t is made only of
// characters that a URL path holds as they are: letters, digits and
// "+-._=/", so that net/http's URL.Path is t itself. (Store names may also
// hold "?", which would start a query.)
func fastPlainTarget(t []byte) bool {
	for _, c := range t {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || bytes.IndexByte([]byte("+-._=/"), c) >= 0) {
			return false
		}
	}
	return true
}

// fastHeaderFields checks the header fields after the request line (ending
// with the empty line) for what the fast path accepts.
func fastHeaderFields(fields []byte) bool {
	hosts := 0
	for len(fields) > 2 {
		line, rest, _ := bytes.Cut(fields, []byte("\r\n"))
		fields = rest
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || !validFieldName(name) || !validFieldValue(value) {
			return false
		}
		value = bytes.Trim(value, " \t")
		switch {
		case fieldIs(name, "host"):
			hosts++
			if !validHost(value) {
				return false
			}
		case fieldIs(name, "connection"):
			if !bytes.EqualFold(value, []byte("keep-alive")) {
				return false
			}
		case fieldIs(name, "content-length"), fieldIs(name, "transfer-encoding"), fieldIs(name, "expect"),
			fieldIs(name, "upgrade"), fieldIs(name, "te"), fieldIs(name, "trailer"):
			return false
		}
	}
	return hosts == 1
}

// fieldIs compares a field name with a lower-case name, ignoring case.
func fieldIs(name []byte, lower string) bool {
	return len(name) == len(lower) && bytes.EqualFold(name, []byte(lower))
}

// validFieldName: a non-empty token (RFC 9110).
func validFieldName(name []byte) bool {
	if len(name) == 0 {
		return false
	}
	for _, c := range name {
		if !tokenChars[c] {
			return false
		}
	}
	return true
}

// validFieldValue: no control characters but tab.
func validFieldValue(v []byte) bool {
	for _, c := range v {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// validHost accepts a conservative subset of what net/http accepts in Host:
// a name or IPv4 address, a bracketed IPv6 address, and a port.
func validHost(h []byte) bool {
	if len(h) == 0 {
		return false
	}
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || bytes.IndexByte([]byte(".-:[]_"), c) >= 0) {
			return false
		}
	}
	return true
}

// tokenChars marks the characters of an RFC 9110 token.
var tokenChars = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range []byte("!#$%&'*+-.^_`|~") {
		t[c] = true
	}
	return t
}()
