package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/mesh"
	"github.com/tbfg/tbfg-node/node/adminapi"
	"github.com/tbfg/tbfg-node/node/datadir"
)

var updateMeshGolden = flag.Bool("update-mesh-golden", false, "rewrite testdata/mesh-*.golden")

// runMesh runs the CLI with args and returns its exit code and output.
func runMesh(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := run(ctx, &stdio{in: strings.NewReader(""), out: &out, err: &errOut}, args)
	return code, out.String(), errOut.String()
}

func TestMeshCommandsRejectBadFlags(t *testing.T) {
	dir := t.TempDir()
	secret := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"join", "--data-dir", dir}, "join needs the mesh secret"},
		{[]string{"join", "--data-dir", dir, "--secret", "xyz"}, "--secret: bad mesh secret"},
		{[]string{"init", "--data-dir", dir, "--voter=false"}, "init with --voter=false"},
		{[]string{"init", "--data-dir", dir, "--bootstrap-expect", "3"}, "--bootstrap-expect does not apply to init"},
		{[]string{"run", "--data-dir", dir, "--raft-profile", "fast"}, `--raft-profile "fast"`},
		{[]string{"run", "--data-dir", dir, "--remove-after", "1s"}, "--remove-after 1s"},
		{[]string{"run", "--data-dir", dir, "--relay", "always"}, `--relay: relay mode "always": want auto, on or off`},
		{[]string{"run", "--data-dir", dir, "--log-level", "loud"}, "log-level"},
		{[]string{"run", "--data-dir", dir, "extra"}, `unexpected argument "extra"`},
		{[]string{"run", "--data-dir", dir, "--no-mdns"}, "not initialised"},
		{[]string{"join", "--data-dir", dir, "--secret", secret, "--secret-file", "/x"}, "give only one"},
		{[]string{"status", "--data-dir", dir}, "no node is running"},
		{[]string{"nodes", "--data-dir", dir, "--json"}, "no node is running"},
		{[]string{"leave", "--data-dir", dir}, "no node is running"},
		{[]string{"acl", "--data-dir", dir}, "no node is running"},
		{[]string{"authorize", "--data-dir", dir, "--acl", filepath.Join(dir, "acl")}, "no node is running"},
		{[]string{"run", "--data-dir", dir, "--executor", "docker"}, `--executor "docker"`},
		{[]string{"run", "--data-dir", dir, "--guix", "/usr/bin/guix"}, "--guix and --guix-substitute-url only apply to --executor guix"},
		{[]string{"run", "--data-dir", dir, "--nix-store", "daemon"}, "--nix-store only applies to --executor nix"},
		{[]string{"run", "--data-dir", dir, "--substitute-listen", "nowhere"}, `--substitute-listen "nowhere"`},
		{[]string{"run", "--data-dir", dir, "--nar-cache-size", "lots"}, "nar-cache-size"},
		{[]string{"run", "--data-dir", dir, "--build-timeout", "-1s"}, "--build-timeout -1s"},
	} {
		t.Run(strings.Join(tc.args[:1], " ")+" "+tc.want, func(t *testing.T) {
			code, _, stderr := runMesh(t, tc.args...)
			if code == 0 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want failure mentioning %q", code, stderr, tc.want)
			}
		})
	}
}

// TestMeshInitNoRun creates a mesh without running it, then checks that the
// printed join line carries the stored secret and that run takes it over.
func TestMeshInitNoRun(t *testing.T) {
	dir := t.TempDir()
	loop := []string{"--data-dir", dir, "--no-mdns", "--listen", "127.0.0.1:0", "--substitute-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--raft-profile", "test", "--log-level", "warn"}
	code, stdout, stderr := runMesh(t, append([]string{"init", "--no-run"}, loop...)...)
	if code != 0 {
		t.Fatalf("init --no-run: exit %d: %s", code, stderr)
	}
	secret, err := os.ReadFile(filepath.Join(dir, datadir.SecretFile))
	if err != nil {
		t.Fatal(err)
	}
	if want := "tbfg-node join --secret " + strings.TrimSpace(string(secret)) + "\n"; !strings.Contains(stdout, want) {
		t.Errorf("init printed:\n%s\nwant the line %q", stdout, want)
	}
	if !strings.Contains(stdout, "is a member of the mesh") {
		t.Errorf("init printed no addresses:\n%s", stdout)
	}
	if code, _, stderr := runMesh(t, append([]string{"init"}, loop...)...); code == 0 || !strings.Contains(stderr, "already initialised") {
		t.Errorf("second init: exit %d, %s", code, stderr)
	}
}

func testNodes() []adminapi.NodeView {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	seen := now.Add(-3 * time.Second)
	return []adminapi.NodeView{
		{ID: "12D3KooWLeader", Suffrage: "voter", Leader: true, Conn: "relayed", LastSeen: &seen, NodeStatus: &mesh.NodeStatus{
			Systems: []string{"x86_64-linux", "i686-linux"}, MaxBuilds: 4, RunningBuilds: 1, Load1: 0.75, Cores: 4, StoreFreeBytes: 50 << 30,
			Version: "v0.4.0", Format: 2, MinFormat: 1}},
		{ID: "12D3KooWSelf", Suffrage: "voter", Self: true, Reachability: "private", LastSeen: &now, NodeStatus: &mesh.NodeStatus{
			Systems: []string{"aarch64-linux"}, MaxBuilds: 2, Load1: 1.5, Cores: 2, StoreFreeBytes: 900 << 20,
			MinFree: 5 << 30, SubstituteURL: "http://198.18.0.1:8761", Version: "v0.3.0"}},
		{ID: "12D3KooWQuiet", Suffrage: "nonvoter"},
	}
}

func TestMeshFormatGolden(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	var nodes bytes.Buffer
	if err := formatNodes(&nodes, testNodes(), now); err != nil {
		t.Fatal(err)
	}
	meshGolden(t, "mesh-nodes.golden", nodes.Bytes())
	var status bytes.Buffer
	formatStatus(&status, adminapi.Status{ID: "12D3KooWSelf", Leader: "12D3KooWSelf", State: adminapi.StateRunning,
		Addresses: []string{"/ip4/198.18.0.1/tcp/8760/p2p/12D3KooWSelf", "/ip4/10.0.0.2/tcp/8760/p2p/12D3KooWSelf"},
		Members:   3, Voters: 2, DataDir: "/var/lib/tbfg", AppliedIndex: 1234, ConnBytes: mesh.ConnBytes{Direct: 3 << 20, Relayed: 12 << 10}, RelayedBytes: 5 << 20, NodeStatus: *testNodes()[1].NodeStatus})
	meshGolden(t, "mesh-status.golden", status.Bytes())
}

// meshGolden compares got with testdata/name; rewrite with
// go test ./cmd/tbfg-node -run MeshFormat -update-mesh-golden.
func meshGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *updateMeshGolden {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestMeshConfigFile(t *testing.T) {
	dir := t.TempDir()
	write := func(text string) string {
		p := filepath.Join(t.TempDir(), "tbfg.json")
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name, file string
		flags      []string
		want       string
	}{
		{"file value checked", `{"raft-profile": "fast"}`, nil, `--raft-profile "fast"`},
		{"flag wins", `{"raft-profile": "fast"}`, []string{"--raft-profile", "lan"}, "not initialised"},
		{"lists and numbers", `{"peer": ["/ip4/198.18.0.1/tcp/8760"], "max-builds": 3}`, nil, "--peer /ip4/198.18.0.1/tcp/8760"},
		{"booleans", `{"voter": false, "bootstrap-expect": 3}`, nil, "--bootstrap-expect with --voter=false"},
		{"unknown key", `{"listen-addr": ":1"}`, nil, `tbfg.json:1: listen-addr: unknown key`},
		{"bad value", `{"max-builds": "many"}`, nil, "max-builds"},
		{"nested", `{"listen": {"a": 1}}`, nil, "listen: want a value, got a table"},
		{"not an object", `["run"]`, nil, "want a JSON object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"run", "--data-dir", dir, "--config", write(tc.file)}, tc.flags...)
			code, _, stderr := runMesh(t, args...)
			if code == 0 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want failure mentioning %q", code, stderr, tc.want)
			}
		})
	}
}
