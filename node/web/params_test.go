package web

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestParams(t *testing.T) {
	tests := []struct {
		raw     string
		ok      bool
		problem string // in the error
	}{
		{"", true, ""},
		{"state=queued,running&limit=10", true, ""},
		{"state=queued&state=running", false, "parameter state: given more than once"},
		{"nope=1", false, `parameter "nope": unknown here`},
		{"limit=" + strings.Repeat("9", 300), false, "parameter limit"},
		{"system=%ff", false, "parameter system"},
		{"%", false, "parameter query: malformed"},
	}
	for _, tt := range tests {
		_, err := parseParams(tt.raw, "state", "limit", "system")
		if (err == nil) != tt.ok || err != nil && !strings.Contains(err.Error(), tt.problem) {
			t.Errorf("%q: %v", tt.raw, err)
		}
	}
	p, _ := parseParams("index=5&wait=250ms", "index", "wait")
	if at, err := p.readAt(); err != nil || at.index != 5 || at.wait != 250*time.Millisecond {
		t.Errorf("readAt: %+v %v", at, err)
	}
	p, _ = parseParams("index=5", "index", "wait")
	if at, _ := p.readAt(); at.wait != DefaultWait {
		t.Errorf("default wait %v", at.wait)
	}
}

// FuzzParams feeds arbitrary query strings to every parser of the API's
// parameters: none may panic, and an error always names a parameter.
func FuzzParams(f *testing.F) {
	for _, seed := range []string{"", "state=queued,failed&system=x86_64-linux&node=12D3Koo&after=5&limit=100",
		"before=18446744073709551615", "index=1&wait=5m", "limit=0", "state=%00", "a=1&a=2", "%zz", "wait=-1s",
		"follow=1", "partial=mesh"} {
		f.Add(seed)
	}
	allowed := []string{"state", "system", "node", "after", "before", "limit", "index", "wait", "follow", "partial"}
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := parseParams(raw, allowed...)
		if err != nil {
			checkParamError(t, err)
			return
		}
		for k, vs := range p.v {
			if len(vs) != 1 || len(vs[0]) > maxValueLen || !utf8.ValidString(vs[0]) {
				t.Fatalf("accepted %q=%q", k, vs)
			}
		}
		if q, err := p.buildsQuery(defaultLimit); err != nil {
			checkParamError(t, err)
		} else if q.limit < 1 || q.limit > maxLimit || (q.after != 0 && q.before != 0) {
			t.Fatalf("accepted query %+v", q)
		}
		if at, err := p.readAt(); err != nil {
			checkParamError(t, err)
		} else if at.wait < 0 || at.wait > MaxWait {
			t.Fatalf("accepted wait %v", at.wait)
		}
		if _, err := p.flag("follow"); err != nil {
			checkParamError(t, err)
		}
	})
}

// FuzzBuildID checks the path element of /builds/{id}.
func FuzzBuildID(f *testing.F) {
	for _, seed := range []string{"1", "0", "007", "18446744073709551615", "18446744073709551616", "-1", "1e3", " 1"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := parseBuildID(s)
		if err != nil {
			checkParamError(t, err)
			return
		}
		if id == 0 || strings.TrimLeft(s, "0123456789") != "" || s[0] == '0' {
			t.Fatalf("accepted %q as %d", s, id)
		}
	})
}

func checkParamError(t *testing.T, err error) {
	t.Helper()
	var pe *ParamError
	if !errors.As(err, &pe) || pe.Param == "" || !strings.HasPrefix(err.Error(), "parameter ") || !utf8.ValidString(err.Error()) {
		t.Fatalf("error %q does not name a parameter", err)
	}
}
