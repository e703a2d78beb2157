package adminapi

import (
	"fmt"
	"testing"
)

func TestParseBuildQuery(t *testing.T) {
	for _, tc := range []struct {
		name  string
		query map[string][]string
		want  string // the BuildQuery as fmtQuery prints it, or the error's text
	}{
		{"empty", nil, "ids [] states [] after 0 limit 0"},
		{"ids", map[string][]string{"id": {"3", "1,2"}}, "ids [3 1 2] states [] after 0 limit 0"},
		{"paging", map[string][]string{"state": {"queued,allocated"}, "after": {"10"}, "limit": {"5"}},
			"ids [] states [queued allocated] after 10 limit 5"},
		{"bad id", map[string][]string{"id": {"x"}}, `bad request: id "x": want a build number`},
		{"zero id", map[string][]string{"id": {"0"}}, `bad request: id "0": want a build number`},
		{"bad limit", map[string][]string{"limit": {"-1"}}, `bad request: limit "-1": want a count`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := ParseBuildQuery(tc.query)
			got := fmtQuery(q)
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
			if err != nil {
				return
			}
			if back, err := ParseBuildQuery(q.Values()); err != nil || fmtQuery(back) != got {
				t.Errorf("Values round trip: %s, %v", fmtQuery(back), err)
			}
		})
	}
}

func FuzzParseBuildQuery(f *testing.F) {
	f.Add("1,2", "queued", "3", "10")
	f.Add("", "", "x", "-1")
	f.Fuzz(func(t *testing.T, id, state, after, limit string) {
		q, err := ParseBuildQuery(map[string][]string{"id": {id}, "state": {state}, "after": {after}, "limit": {limit}})
		if err != nil {
			return
		}
		if back, err := ParseBuildQuery(q.Values()); err != nil || fmtQuery(back) != fmtQuery(q) {
			t.Errorf("Values round trip of %s: %s, %v", fmtQuery(q), fmtQuery(back), err)
		}
	})
}

func fmtQuery(q BuildQuery) string {
	return fmt.Sprintf("ids %v states %v after %d limit %d", nonNilIDs(q.IDs), nonNil(q.States), q.After, q.Limit)
}

func nonNilIDs(ids []uint64) []uint64 {
	if ids == nil {
		return []uint64{}
	}
	return ids
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func TestParseReadAt(t *testing.T) {
	for _, tc := range []struct {
		name  string
		query map[string][]string
		want  string // the ReadAt, or the error's text
	}{
		{"none", nil, "{Index:0 Wait:10s}"},
		{"index", map[string][]string{"index": {"42"}}, "{Index:42 Wait:10s}"},
		{"index and wait", map[string][]string{"index": {"42"}, "wait": {"1m30s"}}, "{Index:42 Wait:1m30s}"},
		{"bad index", map[string][]string{"index": {"-1"}}, `bad request: index "-1": want a Raft index (a number, such as the index a submit answered)`},
		{"bad wait", map[string][]string{"wait": {"soon"}}, `bad request: wait "soon": want a duration such as 30s, over 0 and at most 5m0s`},
		{"long wait", map[string][]string{"wait": {"301s"}}, `bad request: wait "301s": want a duration such as 30s, over 0 and at most 5m0s`},
		{"negative wait", map[string][]string{"wait": {"-1s"}}, `bad request: wait "-1s": want a duration such as 30s, over 0 and at most 5m0s`},
		{"zero wait", map[string][]string{"wait": {"0"}}, `bad request: wait "0": want a duration such as 30s, over 0 and at most 5m0s`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			at, err := ParseReadAt(tc.query)
			got := fmt.Sprintf("%+v", at)
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
			if err == nil {
				if back, err := ParseReadAt(at.Values()); err != nil || back != at {
					t.Errorf("Values round trip: %+v, %v", back, err)
				}
			}
		})
	}
}

func FuzzParseReadAt(f *testing.F) {
	f.Add("42", "30s")
	f.Add("x", "-1")
	f.Fuzz(func(t *testing.T, index, wait string) {
		at, err := ParseReadAt(map[string][]string{"index": {index}, "wait": {wait}})
		if err != nil {
			return
		}
		if at.Wait <= 0 || at.Wait > MaxWait {
			t.Fatalf("wait %s accepted", at.Wait)
		}
		if back, err := ParseReadAt(at.Values()); err != nil || back != at {
			t.Errorf("Values round trip of %+v: %+v, %v", at, back, err)
		}
	})
}
