package web_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/node/adminapi"
	"github.com/tbfg/tbfg-node/node/web/webtest"
)

// timelineRun runs one build on node1, its commands stamped a few
// milliseconds apart, and returns its id and the start time.
func timelineRun(t *testing.T, b *webtest.Backend) (uint64, time.Time) {
	t.Helper()
	t0 := webtest.Start
	clock := t0
	b.Now = func() time.Time { return clock }
	must(t, b.Join(node1, 2, x86))
	ids, err := b.Submit(webtest.Drv("chain-1", x86))
	must(t, err)
	clock = t0.Add(4 * time.Millisecond)
	must(t, b.Allocate(ids[0], node1))
	clock = t0.Add(9 * time.Millisecond)
	must(t, b.Start(ids[0], node1))
	clock = t0.Add(1500 * time.Millisecond)
	must(t, b.Succeed(ids[0], node1))
	return ids[0], t0
}

// stepRows reads the timeline table of a build page: step name → the text
// of its "after the previous step" cell.
func stepRows(t *testing.T, body string) (names []string, deltas map[string]string) {
	t.Helper()
	re := regexp.MustCompile(`(?s)<tr data-step="([a-z]+)">.*?<td class="num delta">(.*?)</td>`)
	deltas = map[string]string{}
	for _, m := range re.FindAllStringSubmatch(body, -1) {
		names = append(names, m[1])
		deltas[m[1]] = m[2]
	}
	return names, deltas
}

// TestBuildPageTimeline: a build this node ran shows every step of its
// timeline in order, each with the time since the previous step; the API
// answers the same timeline as the admin API.
func TestBuildPageTimeline(t *testing.T) {
	b := webtest.New()
	id, t0 := timelineRun(t, b)
	at := func(ms float64) *time.Time {
		v := t0.Add(time.Duration(ms * float64(time.Millisecond)))
		return &v
	}
	b.SetTimeline(id, adminapi.Timeline{Attempt: 1, Seen: at(6.5), Fetched: at(7), Exec: at(8.2),
		Exited: at(1400), Published: at(1450.25), Committed: at(1500.5)})
	h := newServer(t, b, nil).Handler()

	_, body := get(t, h, "GET", fmt.Sprintf("/builds/%d", id))
	names, deltas := stepRows(t, body)
	want := []string{"submitted", "allocated", "seen", "fetched", "exec", "exited", "published", "committed"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Fatalf("steps %v, want %v\n%s", names, want, body)
	}
	for step, d := range map[string]string{"submitted": "", "allocated": "+4.0 ms", "fetched": "+500 µs",
		"exec": "+1.2 ms", "exited": "+1.39 s", "published": "+50.2 ms", "committed": "+50.2 ms"} {
		if got := deltas[step]; got != d {
			t.Errorf("step %s: delta %q, want %q", step, got, d)
		}
	}
	if !strings.Contains(deltas["seen"], "+2.5 ms") || !strings.Contains(deltas["seen"], "two clocks") {
		t.Errorf("seen (the builder's clock after the leader's): %q, want +2.5 ms marked as two clocks", deltas["seen"])
	}
	if miss := contains(body, "<h2>Timeline <small>1.50 s</small>", `datetime="2026-03-04T10:00:00.0065Z"`); miss != "" {
		t.Fatalf("page lacks %q:\n%s", miss, body)
	}
	if strings.Contains(body, "on this page of the node that ran") {
		t.Fatal("the page sends the reader to another node for steps it shows")
	}

	_, part := get(t, h, "GET", fmt.Sprintf("/builds/%d?partial=timeline", id))
	if strings.Contains(part, "<html") || !strings.Contains(part, `data-step="committed"`) {
		t.Fatalf("partial timeline:\n%s", part)
	}

	_, js := get(t, h, "GET", fmt.Sprintf("/api/v1/builds/%d", id))
	var v adminapi.BuildView
	must(t, json.Unmarshal([]byte(js), &v))
	if v.Timeline == nil || v.Timeline.Committed == nil || !v.Timeline.Committed.Equal(*at(1500.5)) {
		t.Fatalf("API build lacks its timeline: %s", js)
	}
}

// TestBuildPageTimelineElsewhere: for a build another node ran, or an
// earlier attempt's timeline, the page shows the steps in the replicated
// state and says where the rest is.
func TestBuildPageTimelineElsewhere(t *testing.T) {
	for _, tt := range []struct {
		name string
		tl   *adminapi.Timeline
	}{
		{"another node ran it", nil},
		{"an earlier attempt", &adminapi.Timeline{Attempt: 7}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := webtest.New()
			id, _ := timelineRun(t, b)
			if tt.tl != nil {
				b.SetTimeline(id, *tt.tl)
			}
			_, body := get(t, newServer(t, b, nil).Handler(), "GET", fmt.Sprintf("/builds/%d", id))
			names, deltas := stepRows(t, body)
			if got := strings.Join(names, " "); got != "submitted allocated started finished" {
				t.Fatalf("steps %q\n%s", got, body)
			}
			if !strings.HasPrefix(deltas["started"], "+5.0 ms") || deltas["finished"] != "+1.49 s" {
				t.Fatalf("deltas %v", deltas)
			}
			if !strings.Contains(body, "on this page of the node that ran the attempt") {
				t.Fatalf("the page does not say where the builder's steps are:\n%s", body)
			}
		})
	}
}

// TestBuildPageTimelineQueued: a build not allocated yet shows its one step.
func TestBuildPageTimelineQueued(t *testing.T) {
	f := newFixture(t)
	_, body := get(t, newServer(t, f.b, nil).Handler(), "GET", fmt.Sprintf("/builds/%d", f.armID))
	if names, _ := stepRows(t, body); strings.Join(names, " ") != "submitted" {
		t.Fatalf("steps %v of a queued build\n%s", names, body)
	}
}
