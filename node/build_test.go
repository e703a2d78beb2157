package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/citest"
	"github.com/tbfg/tbfg-node/internal/hostinfo"
	"github.com/tbfg/tbfg-node/internal/nixtest"
	"github.com/tbfg/tbfg-node/internal/poll"
	"github.com/tbfg/tbfg-node/node/adminapi"
	"github.com/tbfg/tbfg-node/node/datadir"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/derivation"
	"github.com/tbfg/tbfg-node/store/local"
	"github.com/tbfg/tbfg-node/substitutes/narinfo"
	"github.com/tbfg/tbfg-node/substitutes/pki"
)

// requireRoot skips a test that needs root (the builtin executor makes mount
// namespaces), except under CI, where it fails.
func requireRoot(t *testing.T) {
	t.Helper()
	citest.Root(t, "the builtin executor's mount namespaces")
}

// buildGraph is a small graph written as .drv files into a copy of a store:
// leaves that each write a file, and a top that concatenates them.
type buildGraph struct {
	files   []string     // .drv file names, inputs first
	top     store.Path   // the .drv of the top
	outputs []store.Path // the output of every derivation
}

// writeBuildGraph writes leaves independent derivations and one that
// depends on all of them, for system, into dir.
func writeBuildGraph(t *testing.T, dir, system string, leaves int) *buildGraph {
	t.Helper()
	g := &buildGraph{}
	var inputs []store.Path
	script := "cat"
	env := map[string]string{}
	for i := range leaves {
		name := fmt.Sprintf("leaf-%d", i)
		drv, out := writeShellDrv(t, dir, system, name, "echo "+name+" > $out", nil, nil)
		g.files, g.outputs = append(g.files, file(dir, drv)), append(g.outputs, out)
		inputs = append(inputs, drv)
		env[fmt.Sprintf("in%d", i)] = string(out)
		script += fmt.Sprintf(" $in%d", i)
	}
	drv, out := writeShellDrv(t, dir, system, "top", script+" > $out", env, inputs)
	g.files, g.outputs, g.top = append(g.files, file(dir, drv)), append(g.outputs, out), drv
	return g
}

// writeShellDrv writes a derivation whose builder is /bin/sh -c script and
// returns its .drv path and output path.
func writeShellDrv(t *testing.T, dir, system, name, script string, env map[string]string, inputs []store.Path) (store.Path, store.Path) {
	t.Helper()
	d := &derivation.Derivation{
		Outputs:   map[string]derivation.Output{"out": {}},
		InputDrvs: map[store.Path][]string{},
		System:    system,
		Builder:   "/bin/sh",
		Args:      []string{"-c", script},
		Env:       map[string]string{"name": name, "out": "", "builder": "/bin/sh", "system": system},
	}
	for k, v := range env {
		d.Env[k] = v
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
	return p, d.Outputs["out"].Path
}

// buildConfig is a loopback node that builds with the builtin executor.
func buildConfig(t *testing.T, name string, mode Mode, dir, system string) Config {
	c := loopbackConfig(t, name, mode, dir)
	c.withoutAgent = false
	c.Systems = []string{system}
	c.MaxBuilds = 2
	c.BuildTimeout = time.Minute
	return c
}

// TestNodesBuildAndPublish runs three nodes on 127.0.0.1, each with its own
// store, submits a graph on one and checks that every build succeeds
// somewhere, and that every node's substitute server serves every output
// with a narinfo that verifies against the mesh's ACL and a NAR of the
// narinfo's hash.
func TestNodesBuildAndPublish(t *testing.T) {
	requireRoot(t)
	system := hostinfo.NativeSystems(runtime.GOARCH)[0]
	nodes, dirs, c := startBuildNodes(t, 3, system, nil)
	g := writeBuildGraph(t, t.TempDir(), system, 5)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	submitGraph(ctx, t, nodes[1], g)
	waitBuilt(t, c, len(g.files))

	view, err := c.ACL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	acl := checkACL(t, view, dirs)
	waitUntil(t, "substitute URLs and keys gossiped", func() error { return gossipedSubstitutes(c, nodes) })
	for i, r := range nodes {
		url := r.n.SubstituteURL()
		if url == "" {
			t.Fatalf("node %d runs no substitute server", i+1)
		}
		for _, out := range g.outputs {
			checkSubstitute(t, url, out, acl)
		}
	}
}

// startBuildNodes starts n nodes that build for system, the first creating
// the mesh and the others joining it, each configured by edit (nil: no
// change) before it starts, and waits until all are registered members. It
// returns them, their data dirs and a client of the first (closed by the
// test's cleanup).
func startBuildNodes(t *testing.T, n int, system string, edit func(i int, c *Config)) ([]*running, []string, *adminapi.Client) {
	t.Helper()
	var nodes []*running
	var dirs []string
	for i := range n {
		dirs = append(dirs, t.TempDir())
		mode := ModeInit
		if i > 0 {
			mode = ModeJoin
		}
		cfg := buildConfig(t, fmt.Sprintf("n%d", i+1), mode, dirs[i], system)
		if i > 0 {
			cfg.Secret, cfg.Peers = nodes[0].n.Secret(), nodes[0].n.Addrs()
		}
		if edit != nil {
			edit(i, &cfg)
		}
		nodes = append(nodes, startNode(t, cfg))
	}
	c := adminapi.NewClient(dirs[0])
	t.Cleanup(func() { c.Close() })
	waitUntil(t, fmt.Sprintf("%d registered members", n), func() error { return registered(c, n) })
	return nodes, dirs, c
}

// submitGraph submits the top of g, and so the whole graph, on r.
func submitGraph(ctx context.Context, t *testing.T, r *running, g *buildGraph) {
	t.Helper()
	if _, err := r.n.Submit(ctx, adminapi.SubmitRequest{Derivations: []string{file(filepath.Dir(g.files[0]), g.top)}}); err != nil {
		t.Fatal(err)
	}
}

// gossipedSubstitutes checks that c's node has heard every node's
// substitute URL and signing key.
func gossipedSubstitutes(c *adminapi.Client, nodes []*running) error {
	views, err := c.Nodes(context.Background())
	if err != nil {
		return err
	}
	for _, r := range nodes {
		i := slices.IndexFunc(views, func(v adminapi.NodeView) bool { return v.ID == r.n.ID() })
		switch {
		case i < 0 || views[i].NodeStatus == nil:
			return fmt.Errorf("no gossip from %s", r.n.ID())
		case views[i].SubstituteURL != r.n.SubstituteURL():
			return fmt.Errorf("%s gossips substitute URL %q, want %q", r.n.ID(), views[i].SubstituteURL, r.n.SubstituteURL())
		case views[i].SigningKey != r.n.keys.GuixPublic():
			return fmt.Errorf("%s gossips key %q", r.n.ID(), views[i].SigningKey)
		}
	}
	return nil
}

// registered checks that c's node sees n active members in the state.
func registered(c *adminapi.Client, n int) error {
	v, err := c.ACL(context.Background())
	if err != nil {
		return err
	}
	active := 0
	for _, m := range v.Members {
		if m.Status == "active" {
			active++
		}
	}
	if active != n {
		return fmt.Errorf("%d active members, want %d", active, n)
	}
	return nil
}

// waitBuilt waits until n builds exist and all succeeded; a failed build
// fails the test at once.
func waitBuilt(t *testing.T, c *adminapi.Client, n int) {
	t.Helper()
	poll.Fatal(t, 2*time.Minute, 100*time.Millisecond, "every build succeeded", func() error {
		builds, err := c.Builds(context.Background(), adminapi.BuildQuery{})
		if err != nil {
			t.Fatal(err)
		}
		done := 0
		for _, b := range builds {
			switch b.State {
			case "succeeded":
				done++
			case "failed":
				t.Fatalf("build %d of %s failed: %s: %s", b.ID, b.Derivation, b.Reason, b.Message)
			}
		}
		if len(builds) != n || done != n {
			return fmt.Errorf("%d of %d builds succeeded: %+v", done, n, builds)
		}
		return nil
	})
}

// checkACL checks that the ACL text parses as Guix's and holds the key of
// every node, and returns it.
func checkACL(t *testing.T, v adminapi.ACLView, dirs []string) *pki.ACL {
	t.Helper()
	acl, err := pki.ParseACL([]byte(v.ACL))
	if err != nil {
		t.Fatalf("ACL %q: %v", v.ACL, err)
	}
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, datadir.GuixPublicKeyFile))
		if err != nil {
			t.Fatal(err)
		}
		k, err := pki.ParsePublicKey(b)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(acl.Keys, k) {
			t.Errorf("ACL lacks the key of %s", dir)
		}
	}
	return acl
}

// checkSubstitute fetches out's narinfo from the server at url, verifies
// its signature against acl, and fetches its uncompressed NAR, whose hash
// and size must match.
func checkSubstitute(t *testing.T, url string, out store.Path, acl *pki.ACL) {
	t.Helper()
	body := httpGet(t, url+"/"+out.HashPart()+".narinfo")
	ni, err := narinfo.Parse(body, store.GuixDir)
	if err != nil {
		t.Fatalf("%s narinfo of %s: %v\n%s", url, out, err, body)
	}
	if ni.StorePath != out {
		t.Fatalf("%s narinfo of %s names %s", url, out, ni.StorePath)
	}
	if st := narinfo.VerifyGuix(ni, acl); st != pki.Valid {
		t.Errorf("%s narinfo of %s: signature %v", url, out, st)
	}
	i := slices.IndexFunc(ni.Files, func(f narinfo.File) bool { return f.Compression == "none" })
	if i < 0 {
		t.Fatalf("%s narinfo of %s offers no uncompressed NAR: %+v", url, out, ni.Files)
	}
	nar := httpGet(t, url+"/"+ni.Files[i].URL)
	want, err := local.ParseSum(ni.NarHash, int64(ni.NarSize))
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(nar); sum != want.SHA256 || int64(len(nar)) != want.Size {
		t.Errorf("%s NAR of %s: %d bytes, sha256 %x; want %d, %x", url, out, len(nar), sum, want.Size, want.SHA256)
	}
}

func httpGet(t *testing.T, url string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := io.Copy(&b, resp.Body); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, b.Bytes())
	}
	return b.Bytes()
}

// TestNodesBuildWithNix is TestNodesBuildAndPublish with the nix executor:
// two nodes, each building in its own Nix chroot store with a /gnu/store
// layout.
func TestNodesBuildWithNix(t *testing.T) {
	system := hostinfo.NativeSystems(runtime.GOARCH)[0]
	nodes, dirs, c := startBuildNodes(t, 2, system, func(i int, cfg *Config) {
		nix := nixtest.New(t, store.GuixDir)
		if i == 0 {
			// The nodes run Nix with the test's private configuration.
			t.Setenv("NIX_CONF_DIR", filepath.Join(nix.Root, "conf"))
			t.Setenv("NIX_USER_CONF_FILES", filepath.Join(nix.Root, "conf", "nix.conf"))
			t.Setenv("HOME", filepath.Join(nix.Root, "home"))
			t.Setenv("NIX_REMOTE", "")
		}
		cfg.Executor, cfg.NixStore = ExecutorNix, nix.Store
	})
	g := writeBuildGraph(t, t.TempDir(), system, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	submitGraph(ctx, t, nodes[0], g)
	waitBuilt(t, c, len(g.files))
	view, err := c.ACL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	acl := checkACL(t, view, dirs)
	for _, r := range nodes {
		for _, out := range g.outputs {
			checkSubstitute(t, r.n.SubstituteURL(), out, acl)
		}
	}
}

// TestNodeSubstituteListenBusy checks that a node whose substitute port is
// taken stops with an error naming --substitute-listen, after stopping the
// mesh it had started.
func TestNodeSubstituteListenBusy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	cfg := loopbackConfig(t, "n1", ModeInit, dir)
	cfg.SubstituteListen = ln.Addr().String()
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Run(ctx); err == nil || !strings.Contains(err.Error(), "--substitute-listen") {
		t.Fatalf("Run = %v, want an error naming --substitute-listen", err)
	}
	if _, err := os.Stat(filepath.Join(dir, datadir.AdminSocket)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("admin socket left after a failed start: %v", err)
	}
}

// TestNodeGossipsRunningBuilds runs a build that only ends when the node
// stops, and checks that the node gossips it as running.
func TestNodeGossipsRunningBuilds(t *testing.T) {
	requireRoot(t)
	system := hostinfo.NativeSystems(runtime.GOARCH)[0]
	dir := t.TempDir()
	r := startNode(t, buildConfig(t, "n1", ModeInit, dir, system))
	c := adminapi.NewClient(dir)
	defer c.Close()
	waitUntil(t, "registered", func() error { return registered(c, 1) })
	src := t.TempDir()
	drv, _ := writeShellDrv(t, src, system, "forever", "while :; do sleep 1; done", nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := r.n.Submit(ctx, adminapi.SubmitRequest{Derivations: []string{file(src, drv)}}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "one running build gossiped", func() error {
		views, err := c.Nodes(ctx)
		if err != nil {
			return err
		}
		if len(views) != 1 || views[0].NodeStatus == nil || views[0].RunningBuilds != 1 {
			return fmt.Errorf("nodes %+v", views)
		}
		return nil
	})
}
