package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/node/adminapi"
	"github.com/tbfg/tbfg-node/substitutes/pki"
)

// walkthrough is every command of the README's "Use it on your machines",
// in order. TestUseItOnYourMachines fails when the README's list differs,
// so that the text never shows a command the test does not run.
var walkthrough = []string{
	"make install",
	"tbfg-node version",
	"mkdir -p /etc/tbfg && tbfg-node config example >/etc/tbfg/config.toml",
	"tbfg-node config show",
	"tbfg-node init --no-run",
	"systemctl enable --now tbfg-node",
	"tbfg-node join --no-run --secret-file /etc/tbfg/mesh.secret",
	"systemctl enable --now tbfg-node",
	"tbfg-node nodes",
	"tbfg-node authorize",
	"tbfg-node submit --wait /gnu/store/…-hello.drv",
	"tbfg-node builds",
	"curl -s http://127.0.0.1:8767/",
}

// readmeCommands returns the command lines of the sh blocks of the README's
// section titled title, without their comments.
func readmeCommands(t *testing.T, title string) []string {
	t.Helper()
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\n## "+title+"\n")
	if !ok {
		t.Fatalf("README.md has no section %q", title)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var cmds []string
	inSh := false
	for line := range strings.SplitSeq(section, "\n") {
		switch {
		case line == "```sh":
			inSh = true
		case strings.HasPrefix(line, "```"):
			inSh = false
		case inSh:
			cmd, _, _ := strings.Cut(line, "#")
			if cmd = strings.TrimSpace(cmd); cmd != "" {
				cmds = append(cmds, cmd)
			}
		}
	}
	return cmds
}

// TestUseItOnYourMachines runs the README's walk-through on two namespace
// hosts: install, settings, init on one, join on the other, the service's
// own command under its confinement, authorize, submit, builds and the
// status page. It differs from the text where the README says so.
func TestUseItOnYourMachines(t *testing.T) {
	if got := readmeCommands(t, "Use it on your machines"); !slices.Equal(got, walkthrough) {
		t.Fatalf("README.md's walk-through is\n  %s\nthe test runs\n  %s\nchange both together",
			strings.Join(got, "\n  "), strings.Join(walkthrough, "\n  "))
	}
	requireTools(t, "make", "make", "curl", "curl", "setpriv", "util-linux", "unshare", "util-linux", "findmnt", "util-linux")
	c := newCluster(t, "--raft-profile", raftProfile(), "--system", nativeSystem(), "--log-level", "info")
	first, second := c.addHost(), c.addHost()

	// make install, tbfg-node version
	dest := t.TempDir()
	bin := filepath.Join(dest, "usr/local/bin/tbfg-node")
	mustRun(t, "make", "-C", "..", "install", "DESTDIR="+dest, "BIN="+filepath.Join(t.TempDir(), "tbfg-node"))
	if out := mustRun(t, bin, "version"); !strings.HasPrefix(out, "tbfg-node ") {
		t.Fatalf("tbfg-node version: %q", out)
	}
	c.bin = bin // the services below run the installed binary

	// The settings file of each host: the example, with the host's data dir.
	settings := map[*host]string{}
	for _, h := range []*host{first, second} {
		example := mustRun(t, bin, "config", "example")
		edited := strings.Replace(example, "\n# data-dir = ", "\ndata-dir = \""+h.dataDir+"\"\n# was: ", 1)
		if edited == example {
			t.Fatalf("config example has no commented data-dir line:\n%s", example)
		}
		settings[h] = filepath.Join(t.TempDir(), "config.toml")
		if err := os.WriteFile(settings[h], []byte(edited), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	show := mustRun(t, bin, "config", "show", "--config", settings[first])
	if !regexp.MustCompile(`\ndata-dir +` + regexp.QuoteMeta(first.dataDir) + ` +` + regexp.QuoteMeta(settings[first]) + `:\d+\n`).MatchString(show) {
		t.Errorf("config show does not take data-dir from %s:\n%s", settings[first], show)
	}

	// The first machine: init --no-run, then the service.
	if out := mustRunIn(t, first, bin, "init", "--no-run", "--config", settings[first]); !strings.Contains(out, "Mesh secret") {
		t.Errorf("init --no-run printed no secret:\n%s", out)
	}
	startService(t, first, settings[first])

	// The other: the secret file copied over, join --no-run, the service.
	secret, err := os.ReadFile(filepath.Join(first.dataDir, "mesh.secret"))
	if err != nil {
		t.Fatal(err)
	}
	secretFile := filepath.Join(t.TempDir(), "mesh.secret")
	if err := os.WriteFile(secretFile, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	if out := mustRunIn(t, second, bin, "join", "--no-run", "--secret-file", secretFile, "--config", settings[second]); !strings.Contains(out, "is a member of the mesh") {
		t.Errorf("join --no-run did not become a member:\n%s", out)
	}
	startService(t, second, settings[second])
	waitFor(t, time.Minute, "both members listed by tbfg-node nodes", func() error {
		nodes, err := first.nodes()
		if err == nil && len(nodes) != 2 {
			err = fmt.Errorf("%d members", len(nodes))
		}
		return err
	})
	if _, err := first.cli("nodes"); err != nil {
		t.Errorf("tbfg-node nodes: %v", err)
	}

	// authorize, into an ACL file of the test's.
	waitFor(t, time.Minute, "both members' keys registered", func() error {
		out, err := second.cli("acl", "--json")
		var v adminapi.ACLView
		if err == nil {
			err = json.Unmarshal(out, &v)
		}
		if err == nil && len(v.Members) != 2 {
			err = fmt.Errorf("%d member keys", len(v.Members))
		}
		return err
	})
	acl := filepath.Join(t.TempDir(), "acl")
	out, err := second.cli("authorize", "--acl", acl)
	if err != nil {
		t.Fatalf("tbfg-node authorize: %v", err)
	}
	data, _ := os.ReadFile(acl)
	if parsed, err := pki.ParseACL(data); err != nil || !sameKeys(parsed.Keys, []pki.PublicKey{nodeKey(t, first), nodeKey(t, second)}) {
		t.Errorf("authorize (%s) wrote an ACL without both member keys (%v):\n%s", out, err, data)
	}

	// submit --wait, builds, the status page.
	drv := writeDerivation(t, t.TempDir(), "hello", "echo hello > $out", "")
	if _, err := second.cli("submit", "--wait", drv); err != nil {
		t.Fatalf("tbfg-node submit --wait: %v", err)
	}
	if out, err := second.cli("builds"); err != nil || !strings.Contains(string(out), "succeeded") {
		t.Errorf("tbfg-node builds: %v\n%s", err, out)
	}
	page := mustRunIn(t, first, "curl", "-sf", "http://127.0.0.1:8767/")
	if !strings.Contains(page, "hello") && !strings.Contains(page, "tbfg") {
		t.Errorf("the status page names neither the farm nor the build:\n%.500s", page)
	}
}

// startService starts what the systemd unit's ExecStart= runs, under the
// unit's confinement, and waits until it runs.
func startService(t *testing.T, h *host, settings string) {
	t.Helper()
	h.wrap = confinement(t, readUnit(t, unitFile), h.dataDir)
	h.start(t, "run", "--config", settings)
	waitRunning(t, h)
}

// mustRun runs a command on the machine and returns its output.
func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// mustRunIn runs a command in h's namespace and returns its output.
func mustRunIn(t *testing.T, h *host, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := h.ns.Command(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %s %s: %v\n%s", h.name, name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
