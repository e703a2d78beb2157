package web_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/node/web/webtest"
	"github.com/tbfg/tbfg-node/scheduler"
)

// TestCompactedBuild: a build compacted from the history answers 404 on its
// page and in the API, saying so, and is no longer listed.
func TestCompactedBuild(t *testing.T) {
	f := newFixture(t)
	h := newServer(t, f.b, nil).Handler()
	day := 24 * time.Hour
	if _, err := f.b.Apply(&scheduler.Compact{Time: webtest.Start.Add(60 * day), Before: webtest.Start.Add(40 * day),
		Max: scheduler.CompactBatch}); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{fmt.Sprintf("/builds/%d", f.hello), fmt.Sprintf("/api/v1/builds/%d", f.hello)} {
		res, body := get(t, h, "GET", path)
		if res.StatusCode != 404 || !strings.Contains(body, "compacted") {
			t.Errorf("%s: %d %s; want 404 saying it was compacted", path, res.StatusCode, body)
		}
	}
	if _, body := get(t, h, "GET", "/builds"); strings.Contains(body, "hello-2.12") || !strings.Contains(body, "compiler-9") {
		t.Errorf("the build list still shows the compacted build or lost a live one:\n%s", body)
	}
}
