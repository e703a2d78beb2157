package integration

import (
	"bytes"
	"context"
	"fmt"
	"github.com/tbfg/tbfg-node/internal/avahitest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/drvgraph"
	"github.com/tbfg/tbfg-node/internal/guiletest"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/nar"
	"github.com/tbfg/tbfg-node/substitutes/narinfo"
)

// substitutePort is the default --substitute-listen port every node uses.
const substitutePort = 8761

// guixNarinfoScript checks narinfos on libgcrypt the way a Guix client does.
const guixNarinfoScript = "../substitutes/narinfo/testdata/guix-narinfo.scm"

// TestBuildAndPublishAcrossHosts runs three namespace hosts, each with its
// own store, the builtin executor and an avahi-daemon, meshed by mDNS with
// only the secret. A graph submitted on one host is built across all of
// them, every build once; every output is then fetched from every host's
// substitute server with curl and its NAR checked against the narinfo,
// avahi-browse lists the three guix-publish services, and Guix's signature
// check on libgcrypt accepts every narinfo under the ACL of `tbfg-node acl`.
func TestBuildAndPublishAcrossHosts(t *testing.T) {
	requireNamespaces(t)
	requireTools(t, "curl", "curl", "dbus-daemon", "dbus-daemon", "avahi-daemon", "avahi-daemon",
		"avahi-browse", "avahi-utils")
	guile := guiletest.Require(t)
	c := newCluster(t,
		"--raft-profile", raftProfile(),
		"--gossip-interval", "1s",
		"--max-builds", "3",
		"--system", nativeSystem(),
		"--log-level", "info")
	buses := map[*host]string{}
	for range 3 {
		h := c.addHost()
		buses[h] = startAvahi(t, h)
		h.env = []string{"DBUS_SYSTEM_BUS_ADDRESS=" + buses[h]}
	}
	hosts := c.hosts
	ids := map[*host]string{}
	if !t.Run("form", func(t *testing.T) { formMesh(t, hosts, ids, nil) }) {
		return
	}
	g, dir := newGraph(t, drvgraph.Options{Chain: 2, Leaves: 18, Tops: 3, PerTop: 6, SlowEvery: 2, SlowSleep: 1})
	if !t.Run("build", func(t *testing.T) { buildAll(t, hosts, ids, g, dir) }) {
		return
	}
	fetched := t.TempDir()
	if !t.Run("fetch-everywhere", func(t *testing.T) { fetchEverywhere(t, hosts, g, fetched) }) {
		return
	}
	t.Run("avahi-browse", func(t *testing.T) {
		for _, h := range hosts {
			if !h.out.contains("DNS-SD: advertising through avahi-daemon") {
				t.Errorf("%s: the node did not advertise through its avahi-daemon (see its log)", h.name)
			}
		}
		browseAll(t, hosts, buses[hosts[0]])
	})
	t.Run("guix-signatures", func(t *testing.T) { checkSignatures(t, guile, hosts[1], fetched) })
}

// buildAll submits g on the last host and waits until every host reports
// every build succeeded, then checks that each ran once, that every host
// built some, and that inputs crossed hosts.
func buildAll(t *testing.T, hosts []*host, ids map[*host]string, g *drvgraph.Graph, dir string) {
	res := submit(t, hosts[len(hosts)-1], "", g.Files(dir)...)
	if len(res.Builds) != len(g.Order) {
		t.Fatalf("submit: %d builds, want %d", len(res.Builds), len(g.Order))
	}
	waitFor(t, 90*time.Second, "every build succeeded, on every host", func() error {
		for _, h := range hosts {
			bs, err := builds(h)
			if err != nil {
				return err
			}
			if err := allSucceeded(bs, g); err != nil {
				return fmt.Errorf("%s: %w", h.name, err)
			}
		}
		return nil
	})
	builtOn := builders(t, hosts, g)
	perHost := map[string]int{}
	for _, h := range builtOn {
		perHost[h]++
	}
	for _, h := range hosts {
		t.Logf("%s (%s) built %d derivations", h.name, ids[h], perHost[h.name])
		if perHost[h.name] == 0 {
			t.Errorf("%s built nothing", h.name)
		}
	}
	checkCrossing(t, g, builtOn)
}

// allSucceeded checks one host's view: one build per derivation of g, each
// succeeded on its first attempt.
func allSucceeded(bs []buildJSON, g *drvgraph.Graph) error {
	if len(bs) != len(g.Order) {
		return fmt.Errorf("%d builds, want %d", len(bs), len(g.Order))
	}
	seen := map[string]bool{}
	for _, b := range bs {
		if seen[b.Derivation] {
			return fmt.Errorf("derivation %s has two builds", b.Derivation)
		}
		seen[b.Derivation] = true
		if _, ok := g.Drvs[store.Path(b.Derivation)]; !ok {
			return fmt.Errorf("build %d of %s, not in the graph", b.ID, b.Derivation)
		}
		if b.State != "succeeded" {
			return fmt.Errorf("build %d of %s is %s", b.ID, b.Derivation, b.State)
		}
		if b.Attempt != 1 {
			return fmt.Errorf("build %d of %s succeeded on attempt %d, want 1", b.ID, b.Derivation, b.Attempt)
		}
	}
	return nil
}

// checkCrossing fails t unless some derivation was built on another host
// than one of its inputs: its input then came from another host's store.
func checkCrossing(t *testing.T, g *drvgraph.Graph, builtOn map[string]string) {
	t.Helper()
	crossing := 0
	for drv, ins := range g.Inputs {
		for _, in := range ins {
			if builtOn[string(in)] != builtOn[string(drv)] {
				crossing++
			}
		}
	}
	t.Logf("%d input edges cross hosts", crossing)
	if crossing == 0 {
		t.Error("every derivation was built where its inputs were")
	}
}

// builders finds which host built each derivation by the build log it
// keeps (DATA-DIR/logs/<drv>.gz): the build state keeps no node once a
// build is done. Every log must exist on exactly one host: the build ran
// once. It returns the builder's host name by .drv path.
func builders(t *testing.T, hosts []*host, g *drvgraph.Graph) map[string]string {
	t.Helper()
	builtOn := map[string]string{}
	for _, drv := range g.Order {
		var on []string
		for _, h := range hosts {
			if _, err := os.Stat(filepath.Join(h.dataDir, "logs", drv.Base()+".gz")); err == nil {
				on = append(on, h.name)
			}
		}
		if len(on) != 1 {
			t.Errorf("log of %s on %v, want on exactly one host", drv.Base(), on)
			continue
		}
		builtOn[string(drv)] = on[0]
	}
	return builtOn
}

// fetchEverywhere fetches the narinfo and the uncompressed NAR of every
// output from every host's substitute server, from the next host's
// namespace, and checks each NAR against its narinfo. The narinfos are kept
// in dir as <host>-<hash>.narinfo.
func fetchEverywhere(t *testing.T, hosts []*host, g *drvgraph.Graph, dir string) {
	for i, server := range hosts {
		client := hosts[(i+1)%len(hosts)]
		base := fmt.Sprintf("http://%s:%d", server.ns.Addr, substitutePort)
		for _, drv := range g.Order {
			out := g.Output(drv)
			hash, _, _ := strings.Cut(out.Base(), "-")
			text, err := curl(client, base+"/"+hash+".narinfo")
			if err != nil {
				t.Errorf("%s from %s: %v", out, server.name, err)
				continue
			}
			writeFile(t, filepath.Join(dir, server.name+"-"+hash+".narinfo"), string(text))
			if err := checkNAR(client, base, out, text); err != nil {
				t.Errorf("%s from %s: %v", out, server.name, err)
			}
		}
		t.Logf("%s served all %d outputs to %s", server.name, len(g.Order), client.name)
	}
}

// checkNAR parses the narinfo text of out, fetches /nar/<name> from base
// and checks that the bytes are a well-formed NAR with the NarHash and
// NarSize the narinfo gives.
func checkNAR(client *host, base string, out store.Path, text []byte) error {
	n, err := narinfo.Parse(text, store.GuixDir)
	if err != nil {
		return fmt.Errorf("narinfo: %w\n%s", err, text)
	}
	if n.StorePath != out {
		return fmt.Errorf("narinfo of %s", n.StorePath)
	}
	if !slices.ContainsFunc(n.Files, func(f narinfo.File) bool { return f.Compression == "none" }) {
		return fmt.Errorf("narinfo offers no uncompressed NAR:\n%s", text)
	}
	data, err := curl(client, base+"/nar/"+out.Base())
	if err != nil {
		return err
	}
	sum, err := nar.Verify(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("NAR: %w", err)
	}
	if sum.NarHash() != n.NarHash || uint64(sum.Size) != n.NarSize {
		return fmt.Errorf("NAR is %s, %d bytes; narinfo says %s, %d bytes", sum.NarHash(), sum.Size, n.NarHash, n.NarSize)
	}
	return nil
}

// curl GETs url from inside h's namespace, as a LAN client would.
func curl(h *host, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := h.ns.Command(ctx, "curl", "-fsS", "--max-time", "20", url)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("curl %s in %s: %w: %s", url, h.name, err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// browseAll waits until avahi-browse on the first host lists a
// guix-publish service at every host's address and the substitute port.
func browseAll(t *testing.T, hosts []*host, bus string) {
	var last []avahitest.Service
	waitFor(t, 30*time.Second, "avahi-browse lists every host", func() error {
		var err error
		if last, err = browse(hosts[0], bus, "_guix_publish._tcp"); err != nil {
			return err
		}
		for _, h := range hosts {
			if !slices.ContainsFunc(last, func(s avahitest.Service) bool {
				return s.Protocol == "IPv4" && s.Address == h.ns.Addr.String() && s.Port == substitutePort &&
					strings.HasPrefix(s.Name, "guix-publish-")
			}) {
				return fmt.Errorf("no guix-publish service of %s at %s:%d; listed %+v", h.name, h.ns.Addr, substitutePort, last)
			}
		}
		return nil
	})
	for _, s := range last {
		t.Logf("listed: %q at %s:%d", s.Name, s.Address, s.Port)
	}
}

// checkSignatures writes the ACL `tbfg-node acl` prints on h and runs
// Guix's check over every narinfo in dir in one guile process: each must be
// valid-signature.
func checkSignatures(t *testing.T, guile string, h *host, dir string) {
	acl, err := h.cli("acl")
	if err != nil {
		t.Fatal(err)
	}
	aclFile := filepath.Join(t.TempDir(), "acl")
	writeFile(t, aclFile, string(acl))
	files, err := filepath.Glob(filepath.Join(dir, "*.narinfo"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fetched narinfos in %s: %v", dir, err)
	}
	// A copy changed after signing shows the check can fail.
	tampered := filepath.Join(t.TempDir(), "tampered.narinfo")
	text, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, tampered, strings.Replace(string(text), "NarSize: ", "NarSize: 1", 1))
	files = append(files, tampered)
	out, err := exec.Command(guile, append([]string{"--no-auto-compile", guixNarinfoScript, aclFile}, files...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("guile: %v\n%s", err, out)
	}
	verdicts := strings.Fields(string(out))
	if len(verdicts) != len(files) {
		t.Fatalf("guile printed %d verdicts for %d narinfos:\n%s", len(verdicts), len(files), out)
	}
	for i, v := range verdicts {
		want := "valid-signature"
		if files[i] == tampered {
			want = "hash-mismatch"
		}
		if v != want {
			t.Errorf("%s: Guix says %s, want %s", filepath.Base(files[i]), v, want)
		}
	}
	t.Logf("Guix's check on libgcrypt: %d fetched narinfos valid-signature, the tampered copy refused, under the ACL of %d bytes",
		len(files)-1, len(acl))
}
