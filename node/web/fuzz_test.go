package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// FuzzRequest sends arbitrary paths and query strings through the whole
// handler: it must never panic, answer only with the statuses a read-only
// server has, name the parameter of every 400, and keep its JSON valid.
func FuzzRequest(f *testing.F) {
	for _, seed := range [][2]string{
		{"/", ""}, {"/builds", "state=failed&system=x86_64-linux&before=3"}, {"/builds/2", "partial=attempts"},
		{"/failures", "before=2"}, {"/api/v1/builds", "limit=2&after=1"}, {"/api/v1/builds/1", "index=1"},
		{"/api/v1/builds/1/log", ""}, {"/api/v1/status", ""}, {"/api/v1/nodes", "x=1"}, {"/builds/%2e%2e", ""},
		{"/static/style.css", "v=1"}, {"/readyz", ""}, {"/api/v1/builds", "index=99&wait=0s"},
	} {
		f.Add(seed[0], seed[1])
	}
	fx := newFixture(f)
	h := newServer(f, fx.b, nil).Handler()
	f.Fuzz(func(t *testing.T, path, query string) {
		if !strings.HasPrefix(path, "/") || path == "/events" || strings.HasSuffix(path, "/log") && strings.Contains(query, "follow") {
			return // streams do not end
		}
		req := &http.Request{Method: "GET", URL: &url.URL{Path: path, RawQuery: query}, Header: http.Header{},
			Host: "127.0.0.1", RequestURI: path}
		// A wait for an index that never comes ends with the context.
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		req = req.WithContext(ctx)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 301, 307, 308, 404, 503: // the mux redirects unclean paths
		case 400:
			if !strings.Contains(rec.Body.String(), "parameter ") {
				t.Fatalf("%s?%s: 400 without a parameter: %s", path, query, rec.Body)
			}
		default:
			t.Fatalf("%s?%s: status %d: %s", path, query, rec.Code, rec.Body)
		}
		if rec.Header().Get("Content-Type") == "application/json" && !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s?%s: invalid JSON", path, query)
		}
	})
}
