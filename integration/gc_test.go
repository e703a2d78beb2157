package integration

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/drvgraph"
	"github.com/tbfg/tbfg-node/node/datadir"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/substitutes/narinfo"
	"github.com/tbfg/tbfg-node/substitutes/pki"
)

// Sizes of TestStoreBound: every output carries gcFill bytes of filler, so
// the 100 outputs alone (more than 100·gcFill bytes of NAR) do not fit in
// gcStoreMax, while each host's share of them, two copies spread over
// three hosts (about 67 outputs, and the .drv files), does; the inputs a
// host fetches for its builds take it over the bound, and its collector
// removes them.
const (
	gcFill     = 32 << 10
	gcStoreMax = 92 * gcFill
)

// TestStoreBound runs three namespace hosts with --store-max too small for
// the outputs of a 100-derivation graph and --replicas 2, builds the graph,
// and checks what a user of a bounded farm cares about: the graph completes;
// once the collectors ran, every host's store directory, walked file by
// file, is under --store-max; every output is still served by every host
// with a NAR that verifies and a narinfo whose signature our verifier
// accepts against the mesh's ACL; every output has at least two holders.
// `tbfg-node gc --dry-run` and `tbfg-node gc --free 1G` then remove what
// else may go on each host, and the checks above still hold after. Then it
// kills -9 one holder, and the replicator on the survivors brings
// every output back to two holders (beyond --store-max if it must: copies
// come before the bound).
func TestStoreBound(t *testing.T) {
	requireNamespaces(t)
	requireTools(t, "curl", "curl")
	c := newCluster(t,
		"--raft-profile", raftProfile(),
		"--remove-after", removeAfter.String(),
		"--gossip-interval", "1s",
		"--max-builds", "2",
		"--replicas", "2",
		"--store-max", fmt.Sprint(gcStoreMax),
		"--min-free", "0",
		"--gc-interval", "2s",
		"--system", nativeSystem(),
		"--log-level", "info")
	hosts, ids, ok := formThree(t, c)
	if !ok {
		return
	}
	// Build-time-only inputs: a top's output does not refer to the leaves
	// it read, so the copies a builder fetched are its to remove.
	g, dir := newGraph(t, drvgraph.Options{Chain: 1, Leaves: 70, Tops: 29, PerTop: 10, Fill: gcFill, BuildOnly: true})
	if len(g.Order) != 100 {
		t.Fatalf("graph of %d derivations, want 100", len(g.Order))
	}
	submitter := leaderOf(t, hosts, ids)
	if res := submit(t, submitter, "", g.Files(dir)...); len(res.Builds) != len(g.Order) {
		t.Fatalf("submit: %d builds, want %d", len(res.Builds), len(g.Order))
	}
	if !t.Run("complete", func(t *testing.T) {
		waitFor(t, 10*time.Minute, "every build succeeded, on every host", func() error {
			for _, h := range hosts {
				bs, err := builds(h)
				if err == nil {
					err = succeededOnce(bs, g)
				}
				if err != nil {
					return fmt.Errorf("%s: %w", h.name, err)
				}
			}
			return nil
		})
	}) {
		return
	}
	t.Run("under-bound", func(t *testing.T) {
		waitFor(t, 2*time.Minute, "every store under --store-max", func() error {
			return storesUnder(hosts, gcStoreMax)
		})
		collected := 0
		for _, h := range hosts {
			t.Logf("%s: store %d bytes of files, bound %d", h.name, storeBytes(t, h), gcStoreMax)
			if h.out.contains("removed from the store") {
				collected++
			}
		}
		// Whether a host went over depends on how the builds were spread.
		t.Logf("%d of %d hosts' collectors removed items to stay under the bound", collected, len(hosts))
	})
	t.Run("gc-command", func(t *testing.T) { gcCommand(t, hosts) })
	t.Run("fetch-everywhere", func(t *testing.T) {
		total := fetchSigned(t, hosts, g)
		if total <= gcStoreMax {
			t.Errorf("outputs add up to %d bytes of NAR, within --store-max %d: the test proves nothing", total, gcStoreMax)
		}
	})
	t.Run("replicas", func(t *testing.T) {
		if err := enoughHolders(hosts[0], hosts, ids, g, 2); err != nil {
			t.Error(err)
		}
	})
	victim := hosts[1]
	if victim == submitter {
		victim = hosts[2]
	}
	victim.kill()
	live := without(hosts, victim)
	t.Run("restored", func(t *testing.T) {
		waitFor(t, removeAfter+3*time.Minute, "two live holders of every output again", func() error {
			return enoughHolders(live[0], live, ids, g, 2)
		})
		for _, h := range live {
			t.Logf("%s: store %d bytes of files after taking over the killed host's copies", h.name, storeBytes(t, h))
		}
	})
}

// gcCommand runs `tbfg-node gc --dry-run` and then `tbfg-node gc --free 1G`
// on every host, each of which must print its summary line. (That a dry
// run removes nothing is checked by node/gc's tests: here the background
// collector runs beside it.)
func gcCommand(t *testing.T, hosts []*host) {
	removedLine := regexp.MustCompile(`(?m)^(would remove|removed) (\d+) items, `)
	removed := 0
	for _, h := range hosts {
		out, err := h.cli("gc", "--dry-run")
		if err != nil || !removedLine.Match(out) || !strings.HasPrefix(string(removedLine.Find(out)), "would remove") {
			t.Fatalf("%s: gc --dry-run: %v\n%s", h.name, err, out)
		}
		out, err = h.cli("gc", "--free", "1G")
		if err != nil || !removedLine.Match(out) {
			t.Fatalf("%s: gc --free 1G: %v\n%s", h.name, err, out)
		}
		t.Logf("%s: gc --free 1G: %s store now %d bytes of files", h.name, removedLine.Find(out), storeBytes(t, h))
		n, _ := strconv.Atoi(string(removedLine.FindSubmatch(out)[2]))
		removed += n
	}
	if removed == 0 {
		t.Error("gc --free 1G removed nothing on any host, though builders fetched inputs")
	}
}

// storeBytes is the size of the files in h's store directory.
func storeBytes(t *testing.T, h *host) int64 {
	n, err := dirBytes(filepath.Join(h.dataDir, datadir.StoreSubdir))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// storesUnder checks that the store directory of every host holds at most
// max bytes of files.
func storesUnder(hosts []*host, max int64) error {
	for _, h := range hosts {
		n, err := dirBytes(filepath.Join(h.dataDir, datadir.StoreSubdir))
		if err != nil {
			return err
		}
		if n > max {
			return fmt.Errorf("%s: store holds %d bytes, bound %d", h.name, n, max)
		}
	}
	return nil
}

// dirBytes adds up the sizes of the files and symlinks under dir.
func dirBytes(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err == nil {
			n += fi.Size()
		}
		return err
	})
	return n, err
}

// fetchSigned fetches every output of g from every host, as a client in
// the next host's namespace: its narinfo must carry a signature our
// verifier accepts against the ACL `tbfg-node acl` prints, and its NAR must
// match it. It returns the outputs' total NAR size.
func fetchSigned(t *testing.T, hosts []*host, g *drvgraph.Graph) int64 {
	text, err := hosts[0].cli("acl")
	if err != nil {
		t.Fatal(err)
	}
	acl, err := pki.ParseACL(text)
	if err != nil {
		t.Fatalf("acl: %v\n%s", err, text)
	}
	var total int64
	for i, server := range hosts {
		client := hosts[(i+1)%len(hosts)]
		base := fmt.Sprintf("http://%s:%d", server.ns.Addr, substitutePort)
		for _, drv := range g.Order {
			out := g.Output(drv)
			hash, _, _ := strings.Cut(out.Base(), "-")
			text, err := curl(client, base+"/"+hash+".narinfo")
			if err == nil {
				err = checkSigned(text, acl)
			}
			if err == nil {
				err = checkNAR(client, base, out, text)
			}
			if err != nil {
				t.Errorf("%s from %s: %v", out, server.name, err)
			} else if i == 0 {
				n, _ := narinfo.Parse(text, store.GuixDir)
				total += int64(n.NarSize)
			}
		}
	}
	return total
}

// checkSigned checks a narinfo's Guix signature against acl.
func checkSigned(text []byte, acl *pki.ACL) error {
	n, err := narinfo.Parse(text, store.GuixDir)
	if err != nil {
		return err
	}
	if st := narinfo.VerifyGuix(n, acl); st != pki.Valid {
		return fmt.Errorf("signature: %v", st)
	}
	return nil
}

// holderRE finds the holders an output row of a build page lists.
var holderRE = regexp.MustCompile(`available</span> on (.*?)</td>`)

// enoughHolders checks on h's status pages that every output of g is held
// by at least want of the members among hosts.
func enoughHolders(h *host, hosts []*host, ids map[*host]string, g *drvgraph.Graph, want int) error {
	bs, err := builds(h)
	if err != nil {
		return err
	}
	for _, b := range bs {
		page, err := curl(h, "http://127.0.0.1:"+statusPort+fmt.Sprintf("/builds/%d", b.ID))
		if err != nil {
			return err
		}
		m := holderRE.FindSubmatch(page)
		if m == nil {
			return fmt.Errorf("build %d: its page lists no holder", b.ID)
		}
		n := 0
		for _, x := range hosts {
			if strings.Contains(string(m[1]), `title="`+ids[x]+`"`) {
				n++
			}
		}
		if n < want {
			return fmt.Errorf("build %d (%s): %d holders among the hosts (%s), want %d", b.ID, b.Outputs["out"], n, m[1], want)
		}
	}
	return nil
}
