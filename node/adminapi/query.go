package adminapi

import (
	"fmt"
	"strconv"
	"strings"
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
