package integration

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/node/datadir"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/derivation"
	"github.com/tbfg/tbfg-node/substitutes/sexp"
)

// statusPort is the default port of the status server, which every host
// runs on its own loopback.
const statusPort = "8767"

// slowLines is how many lines, one a second, each slow build prints: long
// enough for the browser to watch its log grow, on the overview and on its
// own page, before it succeeds.
const slowLines = 45

// scriptLine is what the failing build prints: pages must show it as text.
const scriptLine = "<script>alert(1)</script>"

// TestStatusAcrossHosts runs three namespace hosts with the builtin
// executor and the status server on its default address, submits builds on
// one of them (fast ones, two slow ones that print a line a second, one
// that fails on purpose and one that depends on it), and checks what a user
// of the status server would:
//   - browser: in headless Chromium, against a host that does not run the
//     slow build it watches, every page loads without a console error, the
//     slow build's log tails live on / and on its page (fetched over the
//     mesh), the failed build's page shows its log escaped, and the slow
//     build goes from running to succeeded on / without a reload;
//   - metrics: `promtool check metrics` passes on /metrics of every host,
//     and tbfg_builds{state,system} agrees with `tbfg-node builds --json`
//     on every host once the queue settled;
//   - health: /healthz answers 200 and /readyz 200 on members, 503 with its
//     reason on a node that never joined and on one left without a leader;
//   - exposure: the server listens on 127.0.0.1 only, answers GET and HEAD
//     only, and no page or answer shows the mesh secret or a secret key.
func TestStatusAcrossHosts(t *testing.T) {
	requireTools(t, "promtool", "prometheus")
	c := newCluster(t,
		"--raft-profile", raftProfile(),
		"--remove-after", "30s",
		"--gossip-interval", "1s",
		"--max-builds", "2",
		"--system", nativeSystem(),
		"--log-level", "info")
	for range 4 {
		c.addHost()
	}
	hosts, outsider := c.hosts[:3], c.hosts[3]
	ids := map[*host]string{}
	if !t.Run("form", func(t *testing.T) { formMesh(t, hosts, ids, nil) }) {
		return
	}
	t.Run("not-ready-before-joining", func(t *testing.T) { notReadyOutsider(t, outsider, readSecret(t, hosts[0])) })
	g := writeStatusGraph(t, t.TempDir(), nativeSystem())
	submitter := hosts[1]
	res := submit(t, submitter, "", g.files...)
	if len(res.Builds) != len(g.files) {
		t.Fatalf("submit: %d builds, want %d", len(res.Builds), len(g.files))
	}
	g.ids = map[string]uint64{}
	for _, b := range res.Builds {
		g.ids[drvName(b.Derivation)] = b.ID
	}
	if !t.Run("browser", func(t *testing.T) { browseLive(t, hosts, ids, g) }) {
		return
	}
	if !t.Run("settled", func(t *testing.T) { waitSettled(t, hosts, g) }) {
		return
	}
	t.Run("metrics", func(t *testing.T) { checkMetrics(t, hosts, g) })
	t.Run("ready", func(t *testing.T) {
		for _, h := range hosts {
			if code, body := statusGet(t, h, http.MethodGet, "/readyz"); code != http.StatusOK || body != "ready\n" {
				t.Errorf("%s /readyz: %d %q", h.name, code, body)
			}
			if code, body := statusGet(t, h, http.MethodGet, "/healthz"); code != http.StatusOK || body != "ok\n" {
				t.Errorf("%s /healthz: %d %q", h.name, code, body)
			}
		}
	})
	t.Run("log-api", func(t *testing.T) {
		// From every host: the builder's own log, or fetched over the mesh.
		want := scriptLine + "\nbroken: failing on purpose\n"
		for _, h := range hosts {
			for _, q := range []string{"", "?follow=1"} {
				path := fmt.Sprintf("/api/v1/builds/%d/log%s", g.ids["broken"], q)
				if code, body := statusGet(t, h, http.MethodGet, path); code != http.StatusOK || body != want {
					t.Errorf("%s GET %s: %d %q, want %q", h.name, path, code, body, want)
				}
			}
		}
	})
	t.Run("loopback-only", func(t *testing.T) { checkLoopbackOnly(t, hosts) })
	t.Run("read-only", func(t *testing.T) { checkReadOnly(t, hosts[0], g) })
	t.Run("no-secrets", func(t *testing.T) { checkNoSecrets(t, hosts, g) })
	t.Run("not-ready-without-leader", func(t *testing.T) {
		hosts[0].kill()
		hosts[1].kill()
		waitFor(t, 60*time.Second, hosts[2].name+" not ready without a leader", func() error {
			code, body := statusGet(t, hosts[2], http.MethodGet, "/readyz")
			if code != http.StatusServiceUnavailable || body != "not ready: no leader known\n" {
				return fmt.Errorf("/readyz: %d %q", code, body)
			}
			return nil
		})
	})
}

// statusGraph is the test's derivations, written as .drv files.
type statusGraph struct {
	files []string          // .drv files, inputs first
	ids   map[string]uint64 // build id by derivation name, once submitted
}

// writeStatusGraph writes the test's derivations into dir: fast-0 to
// fast-5, slow-0 and slow-1 (a line a second for slowLines seconds),
// broken (prints scriptLine and fails), needs-broken (depends on it) and
// top (depends on fast-0 and slow-0). A tag makes every path new to the
// run.
func writeStatusGraph(t *testing.T, dir, system string) *statusGraph {
	t.Helper()
	g := &statusGraph{}
	tag := strconv.FormatInt(time.Now().UnixNano(), 10)
	add := func(name, script string, inputs ...store.Path) store.Path {
		p := writeDrv(t, dir, system, name, tag, script, inputs)
		g.files = append(g.files, filepath.Join(dir, p.Base()))
		return p
	}
	var fast []store.Path
	for i := range 6 {
		fast = append(fast, add(fmt.Sprintf("fast-%d", i), `echo "building $name"; echo "$name" > "$out"`))
	}
	slowScript := fmt.Sprintf(`i=0
while [ $i -lt %d ]; do echo "$name line $i"; i=$((i+1)); sleep 1; done
echo "$name" > "$out"`, slowLines)
	slow := add("slow-0", slowScript)
	add("slow-1", slowScript)
	broken := add("broken", "echo '"+scriptLine+"'; echo \"$name: failing on purpose\" >&2; exit 1")
	add("needs-broken", `echo "$name" > "$out"`, broken)
	add("top", `echo "$name" > "$out"`, fast[0], slow)
	return g
}

// writeDrv writes the derivation name, built by /bin/sh -c script with
// inputs, and returns its .drv path.
func writeDrv(t *testing.T, dir, system, name, tag, script string, inputs []store.Path) store.Path {
	t.Helper()
	d := &derivation.Derivation{
		Outputs:   map[string]derivation.Output{"out": {}},
		InputDrvs: map[store.Path][]string{},
		System:    system,
		Builder:   "/bin/sh",
		Args:      []string{"-c", script},
		Env:       map[string]string{"name": name, "out": "", "builder": "/bin/sh", "system": system, "tag": tag, "PATH": "/bin"},
	}
	for _, in := range inputs {
		d.InputDrvs[in] = []string{"out"}
	}
	if err := derivation.NewHasher(store.GuixDir, derivation.DirLoader{Root: dir, Dir: store.GuixDir}).Fill(d, name); err != nil {
		t.Fatal(err)
	}
	p, err := derivation.StorePath(store.GuixDir, d, name)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, p.Base()), d.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// drvName is "slow-0" for /gnu/store/<hash>-slow-0.drv.
func drvName(p string) string {
	_, name, _ := strings.Cut(strings.TrimSuffix(filepath.Base(p), ".drv"), "-")
	return name
}

// statusBuild is what this test reads of `tbfg-node builds --json`.
type statusBuild struct {
	ID         uint64 `json:"id"`
	Derivation string `json:"derivation"`
	System     string `json:"system"`
	State      string `json:"state"`
	Node       string `json:"node"`
	LastNode   string `json:"last_node"`
}

func statusBuilds(h *host) ([]statusBuild, error) {
	out, err := h.cli("builds", "--json")
	if err != nil {
		return nil, err
	}
	var bs []statusBuild
	if err := json.Unmarshal(out, &bs); err != nil {
		return nil, fmt.Errorf("%s: builds --json: %w", h.name, err)
	}
	return bs, nil
}

// wantEnd is the final state of each build of the graph.
func wantEnd(name string) string {
	switch name {
	case "broken":
		return "failed"
	case "needs-broken":
		return "failed-dependency"
	}
	return "succeeded"
}

// waitSettled waits until every host shows every build in its final state.
func waitSettled(t *testing.T, hosts []*host, g *statusGraph) {
	waitFor(t, 3*time.Minute, "every build ended as planned, on every host", func() error {
		for _, h := range hosts {
			bs, err := statusBuilds(h)
			if err != nil {
				return err
			}
			if len(bs) != len(g.files) {
				return fmt.Errorf("%s: %d builds, want %d", h.name, len(bs), len(g.files))
			}
			for _, b := range bs {
				if want := wantEnd(drvName(b.Derivation)); b.State != want {
					return fmt.Errorf("%s: build %d (%s) is %s, want %s", h.name, b.ID, drvName(b.Derivation), b.State, want)
				}
			}
		}
		return nil
	})
}

// statusGet makes one request to h's status server, from inside h.
func statusGet(t *testing.T, h *host, method, path string) (int, string) {
	t.Helper()
	code, body, err := statusRequest(h, method, path)
	if err != nil {
		t.Fatal(err)
	}
	return code, body
}

func statusRequest(h *host, method, path string) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://127.0.0.1:"+statusPort+path, nil)
	if err != nil {
		return 0, "", err
	}
	tr := &http.Transport{DialContext: h.ns.DialContext}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("%s: %s %s: %w", h.name, method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", fmt.Errorf("%s: %s %s: %w", h.name, method, path, err)
	}
	return resp.StatusCode, string(b), nil
}

// notReadyOutsider runs a node that joins with the mesh's secret but finds
// no member (no mDNS, no peer): its status server says why it is not ready.
func notReadyOutsider(t *testing.T, h *host, secret string) {
	h.start(t, "join", "--secret", secret, "--no-mdns")
	defer h.kill()
	waitFor(t, 60*time.Second, h.name+" serves its status", func() error {
		code, body, err := statusRequest(h, http.MethodGet, "/healthz")
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("/healthz: %d %q", code, body)
		}
		return err
	})
	code, body := statusGet(t, h, http.MethodGet, "/readyz")
	if code != http.StatusServiceUnavailable || body != "not ready: not a member of the mesh's Raft configuration\n" {
		t.Errorf("/readyz of a node that did not join: %d %q", code, body)
	}
}

// buildsLine is one series of tbfg_builds in the text format.
var buildsLine = regexp.MustCompile(`(?m)^tbfg_builds\{state="([a-z-]+)",system="([^"]+)"\} ([0-9]+)$`)

// checkMetrics checks /metrics of every host with promtool and against
// `builds --json`, and the Raft, member and build figures.
func checkMetrics(t *testing.T, hosts []*host, g *statusGraph) {
	leaders, succeeded, failed := 0, 0, 0
	for _, h := range hosts {
		code, text := statusGet(t, h, http.MethodGet, "/metrics")
		if code != http.StatusOK {
			t.Fatalf("%s /metrics: %d", h.name, code)
		}
		cmd := exec.Command("promtool", "check", "metrics")
		cmd.Stdin = strings.NewReader(text)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: promtool check metrics: %v\n%s", h.name, err, out)
		}
		got := map[string]int{}
		for _, m := range buildsLine.FindAllStringSubmatch(text, -1) {
			if n, _ := strconv.Atoi(m[3]); n > 0 {
				got[m[1]+" "+m[2]] = n
			}
		}
		bs, err := statusBuilds(h)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int{}
		for _, b := range bs {
			want[b.State+" "+b.System]++
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: tbfg_builds %v, builds --json %v", h.name, got, want)
		}
		leaders += metricValue(t, text, "tbfg_raft_leader")
		succeeded += metricValue(t, text, `tbfg_build_duration_seconds_count{result="succeeded",system="`+nativeSystem()+`"}`)
		failed += metricValue(t, text, `tbfg_build_duration_seconds_count{result="failed",system="`+nativeSystem()+`"}`)
		if v := metricValue(t, text, `tbfg_mesh_members{suffrage="voter"}`); v != len(hosts) {
			t.Errorf("%s: %d voters in tbfg_mesh_members", h.name, v)
		}
		if c, a := metricValue(t, text, "tbfg_raft_commit_index"), metricValue(t, text, "tbfg_raft_applied_index"); c == 0 || a == 0 {
			t.Errorf("%s: commit index %d, applied index %d", h.name, c, a)
		}
	}
	ran := len(g.files) - 2 // all but broken and needs-broken succeed
	if leaders != 1 || succeeded != ran || failed < 1 {
		t.Errorf("across hosts: %d leaders, %d builds succeeded and %d failed in tbfg_build_duration_seconds; want 1, %d, at least 1",
			leaders, succeeded, failed, ran)
	}
}

// metricValue is the value of the series named exactly series; 0 if absent.
func metricValue(t *testing.T, text, series string) int {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return int(f)
		}
	}
	return 0
}

// checkLoopbackOnly checks that the status server answers on each host's
// loopback only: neither the host itself nor another host reaches it on
// the host's network address.
func checkLoopbackOnly(t *testing.T, hosts []*host) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i, h := range hosts {
		if c, err := h.ns.DialContext(ctx, "tcp", "127.0.0.1:"+statusPort); err != nil {
			t.Errorf("%s: own loopback: %v", h.name, err)
		} else {
			c.Close()
		}
		addr := net.JoinHostPort(h.ns.Addr.String(), statusPort)
		for _, from := range []*host{h, hosts[(i+1)%len(hosts)]} {
			c, err := from.ns.DialContext(ctx, "tcp", addr)
			if err == nil {
				c.Close()
				t.Errorf("%s reached %s's status server at %s", from.name, h.name, addr)
			} else if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("%s dialling %s: %v, want connection refused", from.name, addr, err)
			}
		}
	}
}

// checkReadOnly checks that every route answers GET and HEAD, and nothing
// else.
func checkReadOnly(t *testing.T, h *host, g *statusGraph) {
	paths := []string{"/", "/builds", "/failures", fmt.Sprintf("/builds/%d", g.ids["broken"]), "/api/v1/status",
		"/api/v1/builds", fmt.Sprintf("/api/v1/builds/%d/log", g.ids["broken"]), "/metrics", "/events", "/healthz", "/readyz"}
	for _, p := range paths {
		if code, _ := statusGet(t, h, http.MethodHead, p); code != http.StatusOK {
			t.Errorf("HEAD %s: %d", p, code)
		}
		for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, "PROPFIND"} {
			if code, _ := statusGet(t, h, m, p); code != http.StatusMethodNotAllowed {
				t.Errorf("%s %s: %d, want 405", m, p, code)
			}
		}
	}
}

// checkNoSecrets reads every page and API answer of each host, build pages
// and logs included, and looks for the mesh secret and the text of each
// host's secret keys.
func checkNoSecrets(t *testing.T, hosts []*host, g *statusGraph) {
	var secrets []string
	for _, h := range hosts {
		secrets = append(secrets, readSecret(t, h))
		secrets = append(secrets, secretKeyTexts(t, h)...)
	}
	paths := []string{"/", "/builds", "/failures", "/builds?state=failed", "/api/v1/status", "/api/v1/nodes",
		"/api/v1/builds?limit=1000", "/metrics", "/healthz", "/readyz"}
	for _, id := range g.ids {
		paths = append(paths, fmt.Sprintf("/builds/%d", id), fmt.Sprintf("/api/v1/builds/%d", id))
	}
	paths = append(paths, fmt.Sprintf("/api/v1/builds/%d/log", g.ids["broken"]))
	for _, h := range hosts {
		for _, p := range paths {
			code, body := statusGet(t, h, http.MethodGet, p)
			if code != http.StatusOK {
				t.Errorf("%s GET %s: %d", h.name, p, code)
			}
			for _, s := range secrets {
				if strings.Contains(body, s) {
					t.Errorf("%s GET %s shows a secret", h.name, p)
				}
			}
		}
	}
}

// secretKeyTexts returns the secret parts of h's signing keys: the hex of
// the Guix key's d, and the base64 of the Nix key.
func secretKeyTexts(t *testing.T, h *host) []string {
	t.Helper()
	guix, err := os.ReadFile(filepath.Join(h.dataDir, datadir.GuixSecretKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	// The scalar d as the key file prints it (#HEX#, or a quoted string
	// when its bytes happen to look like text, as libgcrypt writes them) and
	// in hex of either case.
	key, err := sexp.Parse(guix)
	var d sexp.Atom
	if err == nil {
		d, _ = key.Find("d").AtomAt(1)
	}
	if len(d) == 0 {
		t.Fatalf("%s: no (d …) in the Guix secret key: %v", h.name, err)
	}
	printed := strings.TrimSpace(sexp.String(d))
	nix, err := os.ReadFile(filepath.Join(h.dataDir, datadir.NixSecretKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	_, nixSecret, ok := strings.Cut(string(bytes.TrimSpace(nix)), ":")
	if !ok {
		t.Fatalf("%s: Nix secret key %q", h.name, nix)
	}
	return []string{printed, strings.ToUpper(hex.EncodeToString(d)), hex.EncodeToString(d), nixSecret}
}
