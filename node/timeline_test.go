package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/hostinfo"
	"github.com/tbfg/tbfg-node/node/adminapi"
)

// TestNodeBuildPageTimeline: the status server of the node that ran a build
// shows its agent's own steps on the build's page and in the API, as the
// admin API does.
func TestNodeBuildPageTimeline(t *testing.T) {
	requireRoot(t)
	system := hostinfo.NativeSystems(runtime.GOARCH)[0]
	nodes, _, c := startBuildNodes(t, 1, system, nil)
	g := writeBuildGraph(t, t.TempDir(), system, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	submitGraph(ctx, t, nodes[0], g)
	waitBuilt(t, c, len(g.files))
	builds, err := c.Builds(ctx, adminapi.BuildQuery{})
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + nodes[0].n.HTTPAddr()
	for _, b := range builds {
		if b.Timeline == nil || b.Timeline.Committed == nil {
			t.Fatalf("admin API: build %d has no committed step in its timeline: %+v", b.ID, b.Timeline)
		}
		code, body := fetch(t, http.MethodGet, fmt.Sprintf("%s/api/v1/builds/%d", base, b.ID))
		var v adminapi.BuildView
		if err := json.Unmarshal([]byte(body), &v); code != http.StatusOK || err != nil || v.Timeline == nil ||
			v.Timeline.Committed == nil || !v.Timeline.Committed.Equal(*b.Timeline.Committed) {
			t.Fatalf("status API, build %d: %d %v %s; admin API's timeline %+v", b.ID, code, err, body, b.Timeline)
		}
		_, page := fetch(t, http.MethodGet, fmt.Sprintf("%s/builds/%d", base, b.ID))
		for _, step := range []string{"submitted", "allocated", "seen", "fetched", "exec", "exited", "published", "committed"} {
			if !strings.Contains(page, `<tr data-step="`+step+`">`) {
				t.Errorf("build %d: the page lacks the step %s", b.ID, step)
			}
		}
	}
}
