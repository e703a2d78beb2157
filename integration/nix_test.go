package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/drvgraph"
	"github.com/tbfg/tbfg-node/internal/nixtest"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/substitutes/narinfo"
)

// tamperPort is where busybox httpd serves the copies of narinfos and NARs
// on the client host's loopback.
const tamperPort = 8780

// TestNixBuildAndPublishAcrossHosts runs three namespace hosts with the nix
// executor, each building in its own Nix store with the Guix layout
// (logical /gnu/store, real directory under its data dir). A graph
// submitted on one host is built across all of them, every build once, by
// Nix; then, on a fourth host, empty Nix stores that require signatures and
// trust only the mesh's Nix keys (`tbfg-node acl --nix`) copy every output
// from each host's substitute server and verify them, and refuse copies of
// a narinfo and of a NAR that were changed after signing.
func TestNixBuildAndPublishAcrossHosts(t *testing.T) {
	requireNamespaces(t)
	requireTools(t, "curl", "curl")
	nixtest.Require(t)
	c := newCluster(t,
		"--raft-profile", raftProfile(),
		"--gossip-interval", "1s",
		"--max-builds", "3",
		"--system", nativeSystem(),
		"--executor", "nix",
		"--log-level", "info")
	stores := map[*host]*nixtest.Nix{}
	for range 3 {
		h := c.addHost()
		stores[h] = nixtest.New(t, store.GuixDir, nixtest.InDir(filepath.Join(h.dataDir, "nix")))
		h.env = stores[h].Env()
	}
	hosts := c.hosts
	client := c.addHost() // runs no node: a LAN machine with Nix
	ids := map[*host]string{}
	if !t.Run("form", func(t *testing.T) {
		formMesh(t, hosts, ids, func(h *host) []string {
			return []string{"--nix-store", stores[h].Store}
		})
	}) {
		return
	}
	g, dir := newGraph(t, drvgraph.Options{Chain: 2, Leaves: 15, Tops: 3, PerTop: 5, SlowEvery: 2, SlowSleep: 1})
	if !t.Run("build", func(t *testing.T) { buildAll(t, hosts, ids, g, dir) }) {
		return
	}
	t.Run("nix-built-once", func(t *testing.T) { checkNixBuiltOnce(t, hosts, stores, g) })
	keys := meshNixKeys(t, hosts)
	if !t.Run("signatures", func(t *testing.T) { checkNixSigs(t, hosts, client, g, keys) }) {
		return
	}
	t.Run("nix-copy", func(t *testing.T) {
		for _, server := range hosts {
			t.Run("from-"+server.name, func(t *testing.T) { nixCopyAll(t, client, server, hosts, stores, g, keys) })
		}
	})
	t.Run("tampered", func(t *testing.T) { checkTampered(t, client, hosts[0], g, keys) })
}

// checkNixBuiltOnce checks that Nix itself built every derivation on
// exactly one host, the one whose node ran the build, by the build logs
// Nix keeps (LOG/drvs/xx/<rest of the .drv base>.bz2), and that every
// output is valid in that host's Nix store. A host that lacked an input
// built elsewhere would have Nix build that input again, leaving a second
// log.
func checkNixBuiltOnce(t *testing.T, hosts []*host, stores map[*host]*nixtest.Nix, g *drvgraph.Graph) {
	builtOn := builders(t, hosts, g)
	logs := map[string][]string{} // .drv base → hosts where Nix built it
	for _, h := range hosts {
		for _, base := range nixBuildLogs(t, filepath.Join(stores[h].Root, "log")) {
			logs[base] = append(logs[base], h.name)
		}
	}
	for _, drv := range g.Order {
		on := logs[drv.Base()]
		if len(on) != 1 || on[0] != builtOn[string(drv)] {
			t.Errorf("Nix built %s on %v; the node of %s ran its build", drv.Base(), on, builtOn[string(drv)])
		}
	}
	for _, h := range hosts {
		var outs []string
		for _, drv := range g.Order {
			if builtOn[string(drv)] == h.name {
				outs = append(outs, string(g.Output(drv)))
			}
		}
		if len(outs) > 0 {
			stores[h].Run(t, "nix-store", append([]string{"--check-validity"}, outs...)...)
		}
	}
}

// nixBuildLogs lists the .drv base names of the build logs under Nix's log
// directory dir.
func nixBuildLogs(t *testing.T, dir string) []string {
	t.Helper()
	var bases []string
	err := filepath.WalkDir(filepath.Join(dir, "drvs"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rest, ok := strings.CutSuffix(d.Name(), ".bz2")
		if ok {
			bases = append(bases, filepath.Base(filepath.Dir(path))+rest)
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return bases
}

// meshNixKeys returns the Nix keys `tbfg-node acl --nix` prints on the
// first host, after checking that they are the keys in each node's
// nix-signing-key.pub, one per node, with distinct names.
func meshNixKeys(t *testing.T, hosts []*host) []string {
	t.Helper()
	out, err := hosts[0].cli("acl", "--nix")
	if err != nil {
		t.Fatal(err)
	}
	line, ok := strings.CutPrefix(strings.TrimSpace(string(out)), "trusted-public-keys = ")
	if !ok {
		t.Fatalf("acl --nix printed %q, want a trusted-public-keys line", out)
	}
	keys := strings.Fields(line)
	names := map[string]bool{}
	for _, h := range hosts {
		pub, err := os.ReadFile(filepath.Join(h.dataDir, "nix-signing-key.pub"))
		if err != nil {
			t.Fatal(err)
		}
		key := strings.TrimSpace(string(pub))
		if !slices.Contains(keys, key) {
			t.Errorf("acl --nix lacks %s's key %s: %v", h.name, key, keys)
		}
		name, _, _ := strings.Cut(key, ":")
		names[name] = true
	}
	if len(keys) != len(hosts) || len(names) != len(hosts) {
		t.Fatalf("acl --nix printed %d keys with %d distinct names for %d nodes: %v", len(keys), len(names), len(hosts), keys)
	}
	t.Logf("mesh Nix keys: %v", keys)
	return keys
}

// checkNixSigs fetches every output's narinfo from every host, from the
// client host, and checks that each carries Guix's Signature and one Nix
// Sig, by a mesh key, and that every node's key signed some.
func checkNixSigs(t *testing.T, hosts []*host, client *host, g *drvgraph.Graph, keys []string) {
	signers := map[string]int{}
	for _, server := range hosts {
		base := fmt.Sprintf("http://%s:%d", server.ns.Addr, substitutePort)
		for _, drv := range g.Order {
			out := g.Output(drv)
			text, err := curl(client, base+"/"+out.HashPart()+".narinfo")
			if err != nil {
				t.Fatal(err)
			}
			n, err := narinfo.Parse(text, store.GuixDir)
			if err != nil {
				t.Fatalf("%s from %s: %v\n%s", out, server.name, err, text)
			}
			if len(n.Signatures) == 0 || len(n.Sigs) != 1 {
				t.Errorf("%s from %s: %d Signature and %d Sig lines, want Guix's and one of Nix's:\n%s",
					out, server.name, len(n.Signatures), len(n.Sigs), text)
				continue
			}
			name, _, _ := strings.Cut(n.Sigs[0], ":")
			signers[name]++
		}
	}
	for _, k := range keys {
		name, _, _ := strings.Cut(k, ":")
		if signers[name] == 0 {
			t.Errorf("no narinfo signed by %s; signers %v", name, signers)
		}
		delete(signers, name)
	}
	if len(signers) > 0 {
		t.Errorf("narinfos signed by keys outside the mesh: %v", signers)
	}
}

// newNixClient is an empty Nix store with the Guix layout that requires
// signatures and trusts only keys.
func newNixClient(t *testing.T, keys []string) *nixtest.Nix {
	return nixtest.New(t, store.GuixDir, nixtest.WithConf(
		"require-sigs = true",
		"trusted-public-keys = "+strings.Join(keys, " "),
		"download-attempts = 1",
		"connect-timeout = 10",
	))
}

// runIn runs cmd, made by a nixtest.Nix, in h's namespace and returns its
// output and error output.
func runIn(h *host, cmd *exec.Cmd) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := h.ns.Command(ctx, cmd.Path, cmd.Args[1:]...)
	ns.Env = cmd.Env
	var stdout, stderr bytes.Buffer
	ns.Stdout, ns.Stderr = &stdout, &stderr
	err := ns.Run()
	return stdout.String(), stderr.String(), err
}

// nixCopy runs `nix copy --from url` of paths into dst on client.
func nixCopy(client *host, dst *nixtest.Nix, url string, paths []store.Path) (string, error) {
	args := []string{"copy", "--from", url + "?store=/gnu/store"}
	for _, p := range paths {
		args = append(args, string(p))
	}
	_, stderr, err := runIn(client, dst.Cmd("nix", args...))
	return stderr, err
}

// outputs lists the output of every derivation of g.
func outputs(g *drvgraph.Graph) []store.Path {
	var outs []store.Path
	for _, drv := range g.Order {
		outs = append(outs, g.Output(drv))
	}
	return outs
}

// nixCopyAll copies every output of g from server into an empty client
// store, has Nix verify their contents and signatures, and compares each
// NAR hash with the builder's Nix store.
func nixCopyAll(t *testing.T, client, server *host, hosts []*host, stores map[*host]*nixtest.Nix, g *drvgraph.Graph, keys []string) {
	dst := newNixClient(t, keys)
	url := fmt.Sprintf("http://%s:%d", server.ns.Addr, substitutePort)
	outs := outputs(g)
	if stderr, err := nixCopy(client, dst, url, outs); err != nil {
		t.Fatalf("nix copy --from %s: %v\n%s", url, err, stderr)
	}
	args := []string{"store", "verify"}
	for _, p := range outs {
		args = append(args, string(p))
	}
	dst.Run(t, "nix", args...)
	got := nixNarHashes(t, dst, outs)
	want := map[store.Path]string{}
	for _, h := range hosts {
		for p, hash := range nixNarHashes(t, stores[h], validIn(t, stores[h], outs)) {
			want[p] = hash
		}
	}
	for _, p := range outs {
		if got[p] == "" || got[p] != want[p] {
			t.Errorf("%s: NarHash %q in the client store, %q where it was built", p, got[p], want[p])
		}
	}
	t.Logf("%s: %d outputs copied with require-sigs and verified", server.name, len(outs))
}

// validIn returns the paths valid in n's store.
func validIn(t *testing.T, n *nixtest.Nix, paths []store.Path) []store.Path {
	t.Helper()
	args := []string{"--check-validity", "--print-invalid"}
	for _, p := range paths {
		args = append(args, string(p))
	}
	invalid := strings.Fields(n.Run(t, "nix-store", args...))
	return slices.DeleteFunc(slices.Clone(paths), func(p store.Path) bool { return slices.Contains(invalid, string(p)) })
}

// nixNarHashes returns the NAR hash Nix's database records for each path.
func nixNarHashes(t *testing.T, n *nixtest.Nix, paths []store.Path) map[store.Path]string {
	t.Helper()
	hashes := map[store.Path]string{}
	if len(paths) == 0 {
		return hashes
	}
	args := []string{"path-info", "--json"}
	for _, p := range paths {
		args = append(args, string(p))
	}
	var infos []struct {
		Path    store.Path `json:"path"`
		NarHash string     `json:"narHash"`
	}
	if err := json.Unmarshal([]byte(n.Run(t, "nix", args...)), &infos); err != nil {
		t.Fatal(err)
	}
	for _, i := range infos {
		hashes[i.Path] = i.NarHash
	}
	return hashes
}

// tamperCase is one copy of a narinfo and NAR that busybox httpd serves.
type tamperCase struct {
	name    string
	narinfo string
	nar     []byte
	refusal string // in Nix's error output; "" when Nix must take the copy
}

// checkTampered copies the output of the first link of g's chain, which has
// no references, from copies of server's narinfo and NAR that busybox httpd
// serves on the client host's loopback: intact, Nix takes it; with the
// narinfo describing another output's NAR (NarHash and NarSize changed, that
// NAR served), or with one byte of the NAR changed, Nix refuses it and the
// path does not become valid.
func checkTampered(t *testing.T, client, server *host, g *drvgraph.Graph, keys []string) {
	subject := g.Output(g.Chain[0])
	cases := tamperCases(t, client, fmt.Sprintf("http://%s:%d", server.ns.Addr, substitutePort), subject, g.Output(g.Chain[1]))
	root := t.TempDir()
	for _, tc := range cases {
		writeCache(t, filepath.Join(root, tc.name), subject, tc.narinfo, tc.nar)
	}
	local := serveDir(t, client, root, cases[0].name)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dst := newNixClient(t, keys)
			stderr, err := nixCopy(client, dst, local+"/"+tc.name, []store.Path{subject})
			if tc.refusal == "" {
				if err != nil {
					t.Fatalf("nix copy of the intact copy: %v\n%s", err, stderr)
				}
				dst.Run(t, "nix", "store", "verify", string(subject))
				return
			}
			if err == nil || !strings.Contains(stderr, tc.refusal) {
				t.Fatalf("nix copy: %v, want a refusal naming %q:\n%s", err, tc.refusal, stderr)
			}
			t.Logf("refused: %s", lastNixError(stderr))
			// Nix may leave what it unpacked at the real path for the garbage
			// collector; what counts is that the path is not valid.
			if err := dst.Cmd("nix-store", "--check-validity", string(subject)).Run(); err == nil {
				t.Errorf("%s is valid in the client store", subject)
			}
		})
	}
}

// tamperCases fetches the narinfos and NARs of subject and other from the
// substitute server at base and makes the intact copy of subject's and the
// two tampered ones.
func tamperCases(t *testing.T, client *host, base string, subject, other store.Path) []tamperCase {
	text := mustCurl(t, client, base+"/"+subject.HashPart()+".narinfo")
	data := mustCurl(t, client, base+"/nar/"+subject.Base())
	info, err := narinfo.Parse(text, store.GuixDir)
	if err != nil {
		t.Fatal(err)
	}
	otherInfo, err := narinfo.Parse(mustCurl(t, client, base+"/"+other.HashPart()+".narinfo"), store.GuixDir)
	if err != nil {
		t.Fatal(err)
	}
	swapped := strings.NewReplacer(
		"NarHash: "+info.NarHash+"\n", "NarHash: "+otherInfo.NarHash+"\n",
		fmt.Sprintf("NarSize: %d\n", info.NarSize), fmt.Sprintf("NarSize: %d\n", otherInfo.NarSize),
	).Replace(string(text))
	// The output's "name" file holds its name: changing its case keeps the
	// NAR well-formed and changes its hash.
	i := bytes.Index(data, []byte(subject.Name()+"\n"))
	if i < 0 || swapped == string(text) {
		t.Fatalf("cannot tamper with %s: name not in its NAR, or narinfo fields not found:\n%s", subject, text)
	}
	flipped := bytes.Clone(data)
	flipped[i] ^= 0x20
	return []tamperCase{
		{"intact", string(text), data, ""},
		{"narinfo-of-another-nar", swapped, mustCurl(t, client, base+"/nar/"+other.Base()), "lacks a valid signature"},
		{"nar-byte-changed", string(text), flipped, "hash mismatch"},
	}
}

// mustCurl is curl that fails t.
func mustCurl(t *testing.T, h *host, url string) []byte {
	t.Helper()
	b, err := curl(h, url)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeCache writes a binary cache holding p into dir: nix-cache-info, the
// narinfo text with its URL blocks replaced by one for the uncompressed NAR,
// and that NAR.
func writeCache(t *testing.T, dir string, p store.Path, text string, nar []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "nar"), 0o755); err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, line := range strings.SplitAfter(text, "\n") {
		name, _, _ := strings.Cut(line, ":")
		if !slices.Contains([]string{"URL", "Compression", "FileHash", "FileSize"}, name) {
			kept = append(kept, line)
		}
	}
	kept = append(kept, "URL: nar/"+p.Base()+"\n", "Compression: none\n")
	writeFile(t, filepath.Join(dir, "nix-cache-info"), "StoreDir: /gnu/store\nWantMassQuery: 0\nPriority: 10\n")
	writeFile(t, filepath.Join(dir, p.HashPart()+".narinfo"), strings.Join(kept, ""))
	writeFile(t, filepath.Join(dir, "nar", p.Base()), string(nar))
}

// serveDir runs busybox httpd on h's loopback over dir until the test ends,
// waits until it serves probe/nix-cache-info, and returns its URL.
func serveDir(t *testing.T, h *host, dir, probe string) string {
	ctx, cancel := context.WithCancel(context.Background())
	cmd := h.ns.Command(ctx, "/bin/busybox", "httpd", "-f", "-p", fmt.Sprintf("127.0.0.1:%d", tamperPort), "-h", dir)
	out := &logWriter{t: t, prefix: "httpd: "}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("busybox httpd: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
	})
	url := fmt.Sprintf("http://127.0.0.1:%d", tamperPort)
	waitFor(t, 10*time.Second, "busybox httpd serves", func() error {
		_, err := curl(h, url+"/"+probe+"/nix-cache-info")
		return err
	})
	return url
}

// lastNixError is the last line of Nix's error output that says "error".
func lastNixError(stderr string) string {
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], "error") {
			return strings.TrimSpace(lines[i])
		}
	}
	return lines[len(lines)-1]
}
