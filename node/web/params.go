package web

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tbfg/tbfg-node/scheduler"
)

// Bounds on what a client may ask. Every parameter is checked against them
// before anything is read, and a violation is a 400 naming the parameter.
const (
	maxQueryLen  = 2048 // bytes of raw query string
	maxValueLen  = 256  // bytes of one parameter value
	maxLimit     = 1000 // builds per page
	defaultLimit = 100  // builds per API page
	pageLimit    = 50   // builds per HTML page
	// DefaultWait is how long a read with ?index= waits when ?wait= is not
	// given; MaxWait bounds ?wait=.
	DefaultWait = 10 * time.Second
	MaxWait     = 5 * time.Minute
)

// ParamError is a bad query parameter or path element: the answer is a 400
// whose text names Param.
type ParamError struct {
	Param   string // the parameter or path element, e.g. "limit" or "build id"
	Value   string // what the client sent, cut to maxValueLen
	Problem string // what was wrong and what is wanted
}

func (e *ParamError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("parameter %s: %s", e.Param, e.Problem)
	}
	return fmt.Sprintf("parameter %s %q: %s", e.Param, e.Value, e.Problem)
}

// params is a checked query string.
type params struct{ v url.Values }

// parseParams checks a raw query string: well formed, bounded, every name in
// allowed and given at most once.
func parseParams(raw string, allowed ...string) (params, error) {
	if len(raw) > maxQueryLen {
		return params{}, &ParamError{Param: "query", Problem: fmt.Sprintf("longer than %d bytes", maxQueryLen)}
	}
	v, err := url.ParseQuery(raw)
	if err != nil {
		return params{}, &ParamError{Param: "query", Problem: "malformed (want name=value pairs joined by &)"}
	}
	for _, name := range slices.Sorted(maps.Keys(v)) {
		vals := v[name]
		switch {
		case !slices.Contains(allowed, name):
			return params{}, &ParamError{Param: strconv.Quote(cut(name)), Problem: "unknown here; known: " + strings.Join(allowed, ", ")}
		case len(vals) > 1:
			return params{}, &ParamError{Param: name, Problem: "given more than once"}
		case len(vals[0]) > maxValueLen || !utf8.ValidString(vals[0]):
			return params{}, &ParamError{Param: name, Value: cut(vals[0]), Problem: fmt.Sprintf("want valid UTF-8 of at most %d bytes", maxValueLen)}
		}
	}
	return params{v: v}, nil
}

// cut bounds a client's string before it is echoed in an error.
func cut(s string) string {
	if len(s) <= 64 {
		return strings.ToValidUTF8(s, "?")
	}
	return strings.ToValidUTF8(s[:64], "?") + "…"
}

func (p params) get(name string) string { return p.v.Get(name) }

// uint reads an optional unsigned integer.
func (p params) uint(name string) (uint64, error) {
	s := p.get(name)
	if s == "" {
		return 0, nil
	}
	n, err := parseDecimal(s)
	if err != nil {
		return 0, &ParamError{Param: name, Value: cut(s), Problem: "want a whole number"}
	}
	return n, nil
}

// parseDecimal parses a canonical decimal number: digits only, no sign, no
// leading zero.
func parseDecimal(s string) (uint64, error) {
	if s == "" || len(s) > 20 || (len(s) > 1 && s[0] == '0') || strings.TrimLeft(s, "0123456789") != "" {
		return 0, errors.New("not a canonical decimal")
	}
	return strconv.ParseUint(s, 10, 64)
}

// limit reads ?limit=, 1 to maxLimit, def when absent.
func (p params) limit(def int) (int, error) {
	n, err := p.uint("limit")
	if err != nil {
		return 0, err
	}
	if p.get("limit") == "" {
		return def, nil
	}
	if n < 1 || n > maxLimit {
		return 0, &ParamError{Param: "limit", Value: p.get("limit"), Problem: fmt.Sprintf("want 1 to %d", maxLimit)}
	}
	return int(n), nil
}

// flag reads a boolean such as ?follow=1.
func (p params) flag(name string) (bool, error) {
	switch s := p.get(name); s {
	case "", "0", "false":
		return false, nil
	case "1", "true":
		return true, nil
	default:
		return false, &ParamError{Param: name, Value: cut(s), Problem: "want 1 or 0"}
	}
}

// stateNames lists every build state's name, in state order.
var stateNames = func() []string {
	var out []string
	for s := scheduler.BuildQueued; s.String() != "unknown"; s++ {
		out = append(out, s.String())
	}
	return out
}()

// parseState turns a state name into a state.
func parseState(name string) (scheduler.BuildState, bool) {
	i := slices.Index(stateNames, name)
	return scheduler.BuildState(i + 1), i >= 0
}

// filter reads the build filter: ?state= (comma-separated names), ?system=
// and ?node=.
func (p params) filter() (scheduler.BuildFilter, error) {
	var f scheduler.BuildFilter
	if s := p.get("state"); s != "" {
		for _, name := range strings.Split(s, ",") {
			st, ok := parseState(strings.TrimSpace(name))
			if !ok {
				return f, &ParamError{Param: "state", Value: cut(name), Problem: "want one of " + strings.Join(stateNames, ", ")}
			}
			if !slices.Contains(f.States, st) {
				f.States = append(f.States, st)
			}
		}
	}
	f.System, f.Node = p.get("system"), p.get("node")
	for _, name := range []string{"system", "node"} {
		if s := p.get(name); s != "" && !printable(s) {
			return f, &ParamError{Param: name, Value: cut(s), Problem: "want letters, digits and -._:"}
		}
	}
	return f, nil
}

// printable reports whether s looks like a system type or peer ID.
func printable(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._:", r)) {
			return false
		}
	}
	return true
}

// readAt is the consistency a read asks for: ?index= and ?wait=.
type readAt struct {
	index uint64
	wait  time.Duration
}

// readAt reads ?index= and ?wait=.
func (p params) readAt() (readAt, error) {
	var r readAt
	var err error
	if r.index, err = p.uint("index"); err != nil {
		return r, err
	}
	r.wait = DefaultWait
	if s := p.get("wait"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 || d > MaxWait {
			return r, &ParamError{Param: "wait", Value: cut(s), Problem: "want a duration such as 30s, at most " + MaxWait.String()}
		}
		r.wait = d
	}
	return r, nil
}

// parseBuildID reads the build id of a path such as /builds/{id}.
func parseBuildID(s string) (uint64, error) {
	id, err := parseDecimal(s)
	if err != nil || id == 0 {
		return 0, &ParamError{Param: "build id", Value: cut(s), Problem: "want a build number (1, 2, …)"}
	}
	return id, nil
}
