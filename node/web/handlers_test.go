package web_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/tbfg/tbfg-node/node/adminapi"
)

func TestPages(t *testing.T) {
	f := newFixture(t)
	h := newServer(t, f.b, nil).Handler()
	tests := []struct {
		path string
		want []string
	}{
		{"/", []string{"Overview", "…AAAAAAA1", "leader", "5s ago", "x86_64-linux, aarch64-linux", "compiler-9",
			"compiling stage 2", // the running build's log tail
			"hello-2.12", `class="state st-succeeded"`, "100.0 GiB", "v0.9.0", `href="/builds?state=failed&amp;system=x86_64-linux"`,
			"no new builds: disk: 1.2 GiB free &lt; min-free 5.0 GiB",
			`title="reachability, as AutoNAT found it">private</span>`, `title="this node's connection to it">relayed</span>`}},
		{"/builds", []string{"5 builds, newest first", "arm-tool-1", "broken-1.0"}},
		{"/builds?state=failed", []string{"1 build, newest first", "broken-1.0"}},
		{"/builds?system=aarch64-linux", []string{"arm-tool-1"}},
		{"/builds?node=" + node2, []string{"broken-1.0"}},
		{fmt.Sprintf("/builds/%d", f.hello), []string{"hello-2.12", "succeeded", "building hello",
			`<a href="http://192.0.2.1:8761/`, `.narinfo" title=`, "available</span> on"}},
		{fmt.Sprintf("/builds/%d", f.app), []string{"failed-dependency", `href="/builds/2"`, "Not allocated to a node yet."}},
		{fmt.Sprintf("/builds/%d", f.compiler), []string{"running", `data-build="4" data-offset="36"`, "The log grows"}},
		{"/failures", []string{"broken-1.0", "build-error", "builder exited with status 2", `href="/builds/3"`}},
		{"/?partial=queue", []string{"<h2>Queue"}},
		{"/builds/2?partial=attempts", []string{"<h2>Attempts"}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			res, body := get(t, h, "GET", tt.path)
			if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/html; charset=utf-8" {
				t.Fatalf("%d %s\n%s", res.StatusCode, res.Header.Get("Content-Type"), body)
			}
			if miss := contains(body, tt.want...); miss != "" {
				t.Fatalf("page lacks %q:\n%s", miss, body)
			}
			if strings.Contains(tt.path, "partial") && strings.Contains(body, "<html") {
				t.Fatal("a partial rendered the whole page")
			}
		})
	}
}

func TestLogEscaped(t *testing.T) {
	f := newFixture(t)
	h := newServer(t, f.b, nil).Handler()
	_, body := get(t, h, "GET", fmt.Sprintf("/builds/%d", f.broken))
	if strings.Contains(body, scriptLine) || strings.Contains(body, "<script>alert") {
		t.Fatalf("the log's <script> line reached the page unescaped:\n%s", body)
	}
	if !strings.Contains(body, "&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt;") || !strings.Contains(body, "error: &amp; failed") {
		t.Fatalf("the log is not on the page, escaped:\n%s", body)
	}
	// The plain-text log is the log, byte for byte, and not HTML.
	res, text := get(t, h, "GET", fmt.Sprintf("/api/v1/builds/%d/log", f.broken))
	if res.Header.Get("Content-Type") != "text/plain; charset=utf-8" || !strings.Contains(text, scriptLine+"\n") {
		t.Fatalf("plain log: %s %q", res.Header.Get("Content-Type"), text)
	}
	if res.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatal("the plain log may be sniffed as HTML")
	}
}

func TestAPI(t *testing.T) {
	f := newFixture(t)
	h := newServer(t, f.b, nil).Handler()

	var st adminapi.Status
	getJSON(t, h, "/api/v1/status", &st)
	if st.ID != node1 || st.Leader != node1 {
		t.Fatalf("status: %+v", st)
	}
	var nodes []adminapi.NodeView
	getJSON(t, h, "/api/v1/nodes", &nodes)
	if len(nodes) != 2 || !nodes[0].Leader || nodes[1].ID != node2 {
		t.Fatalf("nodes: %+v", nodes)
	}
	var b adminapi.BuildView
	getJSON(t, h, fmt.Sprintf("/api/v1/builds/%d", f.broken), &b)
	if b.ID != f.broken || b.State != "failed" || b.Reason != "build-error" || b.LastNode != node2 || b.Finished == nil {
		t.Fatalf("build: %+v", b)
	}

	tests := []struct {
		query string
		want  []uint64
		next  string // the Link header's query, "" for none
	}{
		{"", []uint64{5, 4, 3, 2, 1}, ""},
		{"?limit=2", []uint64{5, 4}, "limit=2&before=4"},
		{"?limit=2&before=4", []uint64{3, 2}, "before=2&limit=2"},
		{"?limit=2&before=2", []uint64{1}, ""},
		{"?after=0&limit=3", []uint64{5, 4, 3}, "after=0&limit=3&before=3"}, // after=0 is no after: newest first
		{"?after=1&limit=3", []uint64{2, 3, 4}, "after=4&limit=3"},
		{"?state=failed,failed-dependency", []uint64{3, 2}, ""},
		{"?system=aarch64-linux", []uint64{5}, ""},
		{"?node=" + node1, []uint64{4, 1}, ""},
		{"?node=" + node1 + "&state=running", []uint64{4}, ""},
		{"?system=riscv64-linux", []uint64{}, ""},
		{"?node=nobody", []uint64{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			var got []adminapi.BuildView
			res := getJSON(t, h, "/api/v1/builds"+tt.query, &got)
			ids := []uint64{}
			for _, b := range got {
				ids = append(ids, b.ID)
			}
			if fmt.Sprint(ids) != fmt.Sprint(tt.want) {
				t.Fatalf("ids %v, want %v", ids, tt.want)
			}
			link := res.Header.Get("Link")
			if tt.next == "" && link != "" || tt.next != "" && !sameQuery(link, tt.next) {
				t.Fatalf("Link %q, want the query %q", link, tt.next)
			}
		})
	}
}

// sameQuery reports whether a Link header points to /api/v1/builds with the
// parameters of query.
func sameQuery(link, query string) bool {
	rest, ok := strings.CutPrefix(link, "</api/v1/builds?")
	if !ok {
		return false
	}
	got, _, _ := strings.Cut(rest, ">")
	split := func(q string) map[string]bool {
		m := map[string]bool{}
		for _, kv := range strings.Split(q, "&") {
			m[kv] = true
		}
		return m
	}
	return fmt.Sprint(split(got)) == fmt.Sprint(split(query))
}

func getJSON(t *testing.T, h http.Handler, path string, v any) *http.Response {
	t.Helper()
	res, body := get(t, h, "GET", path)
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s: %d %s\n%s", path, res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %v\n%s", path, err, body)
	}
	if _, err := strconv.ParseUint(res.Header.Get("X-Tbfg-Index"), 10, 64); err != nil {
		t.Fatalf("GET %s: X-Tbfg-Index %q", path, res.Header.Get("X-Tbfg-Index"))
	}
	return res
}

func TestBadRequests(t *testing.T) {
	f := newFixture(t)
	h := newServer(t, f.b, nil).Handler()
	tests := []struct {
		path string
		code int
		want string // in the body
	}{
		{"/api/v1/builds?limit=0", 400, "parameter limit"},
		{"/api/v1/builds?limit=1001", 400, "parameter limit"},
		{"/api/v1/builds?limit=-1", 400, "parameter limit"},
		{"/api/v1/builds?limit=1&limit=2", 400, "parameter limit: given more than once"},
		{"/api/v1/builds?state=done", 400, "parameter state \\\"done\\\": want one of queued"},
		{"/api/v1/builds?after=01", 400, "parameter after"},
		{"/api/v1/builds?after=1&before=5", 400, "parameter before"},
		{"/api/v1/builds?system=%3Cscript%3E", 400, "parameter system"},
		{"/api/v1/builds?bogus=1", 400, "parameter \\\"bogus\\\": unknown here"},
		{"/api/v1/builds?" + strings.Repeat("a=1&", 600), 400, "parameter query: longer than"},
		{"/api/v1/builds?%zz", 400, "parameter query: malformed"},
		{"/api/v1/builds?index=x", 400, "parameter index"},
		{"/api/v1/builds?index=1&wait=1h", 400, "parameter wait"},
		{"/api/v1/builds/abc", 400, "parameter build id \\\"abc\\\""},
		{"/api/v1/builds/0", 400, "parameter build id"},
		{"/api/v1/builds/007", 400, "parameter build id"},
		{"/api/v1/builds/99999999999999999999999", 400, "parameter build id"},
		{"/api/v1/builds/99", 404, "build 99: not found"},
		{"/api/v1/builds/99/log", 404, "build 99: not found"},
		{"/api/v1/builds/5/log", 404, "not found"}, // queued: no log yet
		{"/api/v1/builds/1/log?follow=yes", 400, "parameter follow"},
		{"/builds/abc", 400, "parameter build id"},
		{"/builds/99", 404, "build 99: not found"},
		{"/builds?partial=mesh", 400, "parameter partial"},
		{"/?tails=1", 200, "Overview"},
		{"/events?log=x", 400, "parameter log"},
		{"/events?tails=2", 400, "parameter tails"},
		{"/healthz?x=1", 400, "parameter \"x\""},
		{"/static/nope.js", 404, "no such file"},
		{"/nope", 404, "not found"},
		{"/metrics", 404, "no metrics"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			res, body := get(t, h, "GET", tt.path)
			if res.StatusCode != tt.code || !strings.Contains(body, tt.want) {
				t.Fatalf("%d, want %d with %q:\n%s", res.StatusCode, tt.code, tt.want, body)
			}
		})
	}
}

func TestMethods(t *testing.T) {
	f := newFixture(t)
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "up 1") })
	url := serve(t, newServer(t, f.b, metrics))
	for _, path := range []string{"/", "/builds", "/builds/1", "/failures", "/events", "/api/v1/status",
		"/api/v1/nodes", "/api/v1/builds", "/api/v1/builds/1", "/api/v1/builds/1/log", "/healthz", "/readyz", "/metrics"} {
		for _, method := range []string{"POST", "PUT", "DELETE", "PATCH", "OPTIONS"} {
			res := do(t, method, url+path)
			if res.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(res.Header.Get("Allow"), "GET") {
				t.Errorf("%s %s: %d, Allow %q", method, path, res.StatusCode, res.Header.Get("Allow"))
			}
		}
		if res := do(t, "HEAD", url+path); res.StatusCode != 200 {
			t.Errorf("HEAD %s: %d", path, res.StatusCode)
		}
	}
}

// do sends a request without a body and closes the response.
func do(t *testing.T, method, url string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	must(t, err)
	res, err := http.DefaultClient.Do(req)
	must(t, err)
	res.Body.Close()
	return res
}

func TestSecurityHeaders(t *testing.T) {
	f := newFixture(t)
	h := newServer(t, f.b, nil).Handler()
	for _, path := range []string{"/", "/builds/1", "/api/v1/builds", "/api/v1/builds/1/log", "/healthz",
		"/static/live.js", "/nope", "/builds/x"} {
		res, _ := get(t, h, "GET", path)
		csp := res.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") ||
			!strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if res.Header.Get("X-Content-Type-Options") != "nosniff" || res.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: nosniff %q, frame options %q", path, res.Header.Get("X-Content-Type-Options"), res.Header.Get("X-Frame-Options"))
		}
	}
	// No page carries inline script: the CSP would block it anyway.
	for _, path := range []string{"/", "/builds", "/builds/2", "/failures"} {
		_, body := get(t, h, "GET", path)
		if n := strings.Count(body, "<script"); n != 1 || !strings.Contains(body, `<script src="/static/live.js?v=`) {
			t.Errorf("%s: %d script tags", path, n)
		}
	}
}

func TestStatic(t *testing.T) {
	f := newFixture(t)
	h := newServer(t, f.b, nil).Handler()
	_, page := get(t, h, "GET", "/")
	i := strings.Index(page, "/static/style.css?v=")
	versioned := page[i : i+strings.IndexByte(page[i:], '"')]
	res, body := get(t, h, "GET", versioned)
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/css") ||
		!strings.Contains(res.Header.Get("Cache-Control"), "immutable") || !strings.Contains(body, ".state") {
		t.Fatalf("%s: %d %v", versioned, res.StatusCode, res.Header)
	}
	res, _ = get(t, h, "GET", "/static/style.css")
	if res.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("unversioned asset cached: %q", res.Header.Get("Cache-Control"))
	}
}

func TestNarinfoLinksOnlyForAvailablePaths(t *testing.T) {
	f := newFixture(t)
	h := newServer(t, f.b, nil).Handler()
	_, body := get(t, h, "GET", fmt.Sprintf("/builds/%d", f.broken))
	if strings.Contains(body, `<a href="http://192.0.2.1:8761/`) {
		t.Fatalf("a path no node holds links to a narinfo that would be 404:\n%s", body)
	}
}
