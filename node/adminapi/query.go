package adminapi

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Bounds of ReadAt.Wait: a read that names an index and no wait waits
// DefaultWait; no read waits longer than MaxWait.
const (
	DefaultWait = 10 * time.Second
	MaxWait     = 5 * time.Minute
)

// ParseBuildQuery reads a BuildQuery from the query string of GET
// /v1/builds: id (repeatable or comma-separated), state (likewise), after
// and limit.
func ParseBuildQuery(values map[string][]string) (BuildQuery, error) {
	var q BuildQuery
	for _, v := range splitValues(values["id"]) {
		id, err := strconv.ParseUint(v, 10, 64)
		if err != nil || id == 0 {
			return q, fmt.Errorf("%w: id %q: want a build number", ErrBadRequest, v)
		}
		q.IDs = append(q.IDs, id)
	}
	q.States = splitValues(values["state"])
	var err error
	if v := values["after"]; len(v) > 0 {
		if q.After, err = strconv.ParseUint(v[0], 10, 64); err != nil {
			return q, fmt.Errorf("%w: after %q: want a build number", ErrBadRequest, v[0])
		}
	}
	if v := values["limit"]; len(v) > 0 {
		if q.Limit, err = strconv.Atoi(v[0]); err != nil || q.Limit < 0 {
			return q, fmt.Errorf("%w: limit %q: want a count", ErrBadRequest, v[0])
		}
	}
	return q, nil
}

// Values returns q as a query string for GET /v1/builds.
func (q BuildQuery) Values() map[string][]string {
	v := map[string][]string{}
	for _, id := range q.IDs {
		v["id"] = append(v["id"], strconv.FormatUint(id, 10))
	}
	if len(q.States) > 0 {
		v["state"] = q.States
	}
	if q.After > 0 {
		v["after"] = []string{strconv.FormatUint(q.After, 10)}
	}
	if q.Limit > 0 {
		v["limit"] = []string{strconv.Itoa(q.Limit)}
	}
	return v
}

// splitValues splits comma-separated values and drops empty ones.
func splitValues(vs []string) []string {
	var out []string
	for _, v := range vs {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				out = append(out, f)
			}
		}
	}
	return out
}

// ParseReadAt reads a ReadAt from the query string of a GET: index (a Raft
// index, 0 for none) and wait (a duration such as 30s, over 0 and at
// most MaxWait; DefaultWait if not given).
func ParseReadAt(values map[string][]string) (ReadAt, error) {
	at := ReadAt{Wait: DefaultWait}
	var err error
	if v := values["index"]; len(v) > 0 {
		if at.Index, err = strconv.ParseUint(v[0], 10, 64); err != nil {
			return at, fmt.Errorf("%w: index %q: want a Raft index (a number, such as the index a submit answered)", ErrBadRequest, v[0])
		}
	}
	if v := values["wait"]; len(v) > 0 {
		if at.Wait, err = time.ParseDuration(v[0]); err != nil || at.Wait <= 0 || at.Wait > MaxWait {
			return at, fmt.Errorf("%w: wait %q: want a duration such as 30s, over 0 and at most %s", ErrBadRequest, v[0], MaxWait)
		}
	}
	return at, nil
}

// Values returns at as query parameters; none for the zero ReadAt.
func (at ReadAt) Values() map[string][]string {
	v := map[string][]string{}
	if at.Index > 0 {
		v["index"] = []string{strconv.FormatUint(at.Index, 10)}
	}
	if at.Wait > 0 {
		v["wait"] = []string{at.Wait.String()}
	}
	return v
}
