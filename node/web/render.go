package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"github.com/tbfg/tbfg-node/internal/bytesize"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
)

//go:embed templates/*.html static/*
var assets embed.FS

// pageNames are the templates of the pages; each is parsed with layout.html.
var pageNames = []string{"overview", "builds", "build", "failures", "error"}

// staticHashes maps each static file to a hash of its content, the version
// in its URL: a changed file gets a new URL, so it may be cached long.
var staticHashes = func() map[string]string {
	out := map[string]string{}
	entries, _ := fs.ReadDir(assets, "static")
	for _, e := range entries {
		b, _ := fs.ReadFile(assets, "static/"+e.Name())
		sum := sha256.Sum256(b)
		out[e.Name()] = hex.EncodeToString(sum[:6])
	}
	return out
}()

// parseTemplates parses every page with the layout and the helpers.
func (s *Server) parseTemplates() (map[string]*template.Template, error) {
	out := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(s.funcs()).ParseFS(assets, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("parse template %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

// funcs are the template helpers.
func (s *Server) funcs() template.FuncMap {
	return template.FuncMap{
		"asset": func(name string) string { return "/static/" + name + "?v=" + staticHashes[name] },
		"ago":   func(t time.Time) string { return ago(t, s.cfg.Now()) },
		"since": func(a, b time.Time) string { return span(a, b, s.cfg.Now()) },
		"when":  when,
		"iso": func(t time.Time) string {
			return t.UTC().Format(time.RFC3339)
		},
		"isoNano": func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) },
		"whenMs": func(t time.Time) string {
			return t.UTC().Format("2006-01-02 15:04:05.000Z")
		},
		"agoPtr": func(t *time.Time) string {
			if t == nil {
				return "never"
			}
			return ago(*t, s.cfg.Now())
		},
		"bytes": bytesize.IEC,
		"short": shortID,
		"load":  func(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) },
		"join":  strings.Join,
		"add":   func(a, b int) int { return a + b },
	}
}

// ago is "12s ago", "3m ago", "5h ago", "2d ago"; "" for a zero time.
func ago(t, now time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t)
	if d < 0 {
		return "in " + roughly(-d)
	}
	return roughly(d) + " ago"
}

func roughly(d time.Duration) string {
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + "m"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d.Hours())) + "h"
	}
	return strconv.Itoa(int(d.Hours()/24)) + "d"
}

// span is how long from a to b (to now while b is zero): "1h02m", "3m04s".
func span(a, b, now time.Time) string {
	if a.IsZero() {
		return ""
	}
	if b.IsZero() {
		b = now
	}
	d := b.Sub(a).Round(time.Second)
	switch {
	case d < 0:
		return ""
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

// when is a time as the pages show it, in UTC.
func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// shortID shortens a peer ID for tables: its last 8 characters (the full
// ID is in the title attribute and on hover).
func shortID(id string) string {
	if len(id) <= 12 {
		return id
	}
	return "…" + id[len(id)-8:]
}

// pageFunc reads a page: the template to render and its data.
type pageFunc func(ctx context.Context, req *request) (string, any, error)

// page wraps a page handler: parameters, ?index=, the template, and
// ?partial=NAME, which renders only the section NAME of the page (what
// live.js fetches to refresh it).
func (s *Server) page(fn pageFunc, allowed ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		req, err := s.prepare(w, r, allowed)
		if err != nil {
			s.renderError(w, r, err)
			return
		}
		name, data, err := fn(r.Context(), req)
		if err != nil {
			s.renderError(w, r, err)
			return
		}
		if b, ok := data.(interface{ base() *pageBase }); ok {
			b.base().Page = name
		}
		tmpl := "layout"
		if part := req.p.get("partial"); part != "" {
			tmpl = "part:" + part
			if s.templates[name].Lookup(tmpl) == nil {
				s.renderError(w, r, &ParamError{Param: "partial", Value: cut(part), Problem: "no such section on this page"})
				return
			}
		}
		s.render(w, http.StatusOK, name, tmpl, data)
	}
}

// render executes a template into a buffer first, so a failure is a clean
// 500 and not half a page.
func (s *Server) render(w http.ResponseWriter, code int, page, tmpl string, data any) {
	var buf bytes.Buffer
	if err := s.templates[page].ExecuteTemplate(&buf, tmpl, data); err != nil {
		s.log.Error("render page", "page", page, "err", err)
		http.Error(w, "render page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}

type errorPage struct {
	pageBase
	Code    int
	Message string
}

// renderError answers a page request with an HTML error page.
func (s *Server) renderError(w http.ResponseWriter, r *http.Request, err error) {
	code := statusOf(err)
	if code == http.StatusInternalServerError {
		s.log.Warn("status page failed", "path", r.URL.Path, "err", err)
	}
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	s.render(w, code, "error", "layout", &errorPage{pageBase: pageBase{Title: http.StatusText(code)},
		Code: code, Message: err.Error()})
}

// static serves the embedded CSS and JavaScript.
func (s *Server) static(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	hash, ok := staticHashes[name]
	if !ok {
		http.Error(w, "no such file", http.StatusNotFound)
		return
	}
	p, err := parseParams(r.URL.RawQuery, "v")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	b, _ := fs.ReadFile(assets, "static/"+name)
	h := w.Header()
	h.Set("Content-Type", mime.TypeByExtension(path.Ext(name)))
	h.Set("ETag", `"`+hash+`"`)
	if p.get("v") == hash {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
}
