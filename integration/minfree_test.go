package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/drvgraph"
)

// TestMinFreeKeepsBuildsOff: on three namespace hosts, one started with a
// --min-free larger than any disk, `tbfg-node nodes` on another host says
// why it takes no new builds, and the whole graph is built by the other two.
func TestMinFreeKeepsBuildsOff(t *testing.T) {
	c := newCluster(t,
		"--raft-profile", raftProfile(),
		"--gossip-interval", "1s",
		"--max-builds", "4",
		"--system", nativeSystem(),
		"--log-level", "info")
	for range 3 {
		c.addHost()
	}
	hosts, ids := c.hosts, map[*host]string{}
	full := hosts[2]
	extra := func(h *host) []string {
		if h == full {
			return []string{"--min-free", "1000000T"}
		}
		return nil
	}
	if !t.Run("form", func(t *testing.T) { formMesh(t, hosts, ids, extra) }) {
		return
	}
	want := ids[full] + " takes no new builds: disk: "
	waitFor(t, 30*time.Second, "nodes on h1 to say why "+full.name+" takes no builds", func() error {
		out, err := hosts[0].cli("nodes")
		if err == nil && (!strings.Contains(string(out), want) || !strings.Contains(string(out), "< min-free 976.6 PiB")) {
			err = fmt.Errorf("nodes printed:\n%s", out)
		}
		if err == nil && strings.Count(string(out), "takes no new builds") != 1 {
			err = fmt.Errorf("more than one node takes no builds:\n%s", out)
		}
		return err
	})
	g, dir := newGraph(t, drvgraph.Options{Chain: 1, Leaves: 8, Tops: 2, PerTop: 3})
	if out, err := hosts[0].cliLong(5*time.Minute, append([]string{"submit", "--wait"}, g.Files(dir)...)...); err != nil {
		t.Fatalf("%v\nstdout:\n%s", err, out)
	}
	bs, err := builds(hosts[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := allSucceeded(bs, g); err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		if b.LastNode == ids[full] {
			t.Errorf("build %d ran on %s, below its --min-free", b.ID, full.name)
		}
	}
}
