package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/derivation"
)

// servedFile is what the HTTP server of TestUnprivilegedNodeBuilds serves.
const servedFile = "fetched by a fixed-output derivation\n"

// TestUnprivilegedNodeBuilds runs a node as an ordinary user (a uid with no
// account, through setpriv) on one namespace host, with the builtin
// executor, and an HTTP server on another. A fixed-output derivation that
// downloads the server's file builds and is published; the same download
// declared with another hash fails and is never published; an ordinary
// derivation cannot reach the server, and its builder is uid 1000 mapped to
// the node's uid.
func TestUnprivilegedNodeBuilds(t *testing.T) {
	requireTools(t, "setpriv", "util-linux", "curl", "curl")
	c := newCluster(t, "--no-mdns", "--raft-profile", raftProfile(), "--system", nativeSystem(), "--log-level", "info")
	node, server := c.addHost(), c.addHost()
	uid := 0x70040000 // no account has it
	shared := sharedDir(t)
	node.dataDir = filepath.Join(shared, "data")
	for _, err := range []error{os.Mkdir(node.dataDir, 0o700), os.Chown(node.dataDir, uid, uid)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	node.wrap = []string{"setpriv", "--reuid", strconv.Itoa(uid), "--regid", strconv.Itoa(uid), "--clear-groups", "--"}
	if err := os.Chmod(filepath.Dir(c.bin), 0o755); err != nil { // the user runs the binary
		t.Fatal(err)
	}
	url := startHTTPServer(t, server)
	node.start(t, "init")
	waitRunning(t, node)
	checkRunsAs(t, node, uid)

	sum := sha256.Sum256([]byte(servedFile))
	wrong := sha256.Sum256([]byte("something else"))
	fetch := fmt.Sprintf("printf 'GET /file HTTP/1.0\\r\\n\\r\\n' | nc -w 10 %s | sed \"1,/^$(printf '\\r')\\$/d\" > $out",
		strings.Replace(strings.TrimPrefix(url, "http://"), ":", " ", 1))
	dir := shared // the node reads the .drv files
	good := writeDerivation(t, dir, "download", fetch, hex.EncodeToString(sum[:]))
	bad := writeDerivation(t, dir, "download-wrong", fetch, hex.EncodeToString(wrong[:]))
	plain := writeDerivation(t, dir, "no-network", fmt.Sprintf("cat /proc/self/uid_map > $out; if %s; then exit 1; fi",
		strings.Replace(fetch, "> $out", "| grep -q fetched", 1)), "")
	submit(t, node, "", good, bad, plain)

	want := map[string]string{good: "succeeded", bad: "failed", plain: "succeeded"}
	waitFor(t, 2*time.Minute, "the three builds end", func() error {
		return buildStates(node, want)
	})
	for drv, state := range want {
		out := outputOf(t, drv)
		served := narinfoServed(t, server, node, out)
		if published := state == "succeeded"; served != published {
			t.Errorf("%s: narinfo served %v, want %v", out, served, published)
		}
	}
	uidMap, err := os.ReadFile(filepath.Join(node.dataDir, "store", outputOf(t, plain).Base()))
	if err != nil || strings.Join(strings.Fields(string(uidMap)), " ") != "1000 0 1" {
		t.Errorf("builder's uid_map %q, %v: want 1000 mapped to the helper's 0, the node's uid", uidMap, err)
	}
}

// sharedDir makes a directory that every user may read.
func sharedDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "tbfg-user-")
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// startHTTPServer serves servedFile at /file on h with busybox httpd, and
// returns the server's URL.
func startHTTPServer(t *testing.T, h *host) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "file"), []byte(servedFile), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := h.ns.Addr.String() + ":8080"
	ctx, cancel := context.WithCancel(context.Background())
	cmd := h.ns.Command(ctx, "/bin/busybox", "httpd", "-f", "-p", addr, "-h", dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	waitFor(t, 10*time.Second, "busybox httpd serves", func() error {
		return h.ns.Command(context.Background(), "/bin/busybox", "wget", "-q", "-O", "/dev/null", "http://"+addr+"/file").Run()
	})
	return "http://" + addr
}

// checkRunsAs checks that h's node process runs as uid.
func checkRunsAs(t *testing.T, h *host, uid int) {
	h.mu.Lock()
	pid := h.cmd.Process.Pid
	h.mu.Unlock()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if ids, ok := strings.CutPrefix(line, "Uid:"); ok && strings.Fields(ids)[1] != strconv.Itoa(uid) {
			t.Fatalf("the node runs as %s, want uid %d", ids, uid)
		}
	}
}

// writeDerivation writes a derivation running script with /bin/sh, fixed
// to the sha256 hash if not empty, under its store base name in dir, and
// returns the file's name.
func writeDerivation(t *testing.T, dir, name, script, hash string) string {
	sys := nativeSystem()
	out := derivation.Output{}
	if hash != "" {
		out = derivation.Output{HashAlgo: "sha256", Hash: hash}
	}
	d := &derivation.Derivation{
		Outputs:   map[string]derivation.Output{"out": out},
		InputDrvs: map[store.Path][]string{},
		System:    sys,
		Builder:   "/bin/sh",
		Args:      []string{"-c", script},
		Env:       map[string]string{"name": name, "system": sys, "builder": "/bin/sh", "out": ""},
	}
	if hash != "" {
		d.Env["outputHash"], d.Env["outputHashAlgo"], d.Env["outputHashMode"] = hash, "sha256", "flat"
	}
	if err := derivation.NewHasher(store.GuixDir, noBenchInputs{}).Fill(d, name); err != nil {
		t.Fatal(err)
	}
	p, err := derivation.StorePath(store.GuixDir, d, name)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, p.Base())
	if err := os.WriteFile(file, d.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// outputOf is the output path of the derivation in file.
func outputOf(t *testing.T, file string) store.Path {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	d, err := derivation.Parse(data, store.GuixDir)
	if err != nil {
		t.Fatal(err)
	}
	return d.Outputs["out"].Path
}

// buildStates checks that the builds of the derivation files in want are in
// their wanted states.
func buildStates(h *host, want map[string]string) error {
	bs, err := builds(h)
	if err != nil {
		return err
	}
	states := map[string]string{}
	for _, b := range bs {
		states[filepath.Base(b.Derivation)] = b.State
	}
	for file, state := range want {
		if got := states[filepath.Base(file)]; got != state {
			return fmt.Errorf("%s is %q, want %q", filepath.Base(file), got, state)
		}
	}
	return nil
}

// narinfoServed asks node's substitute server, from host from, whether it
// serves p's narinfo.
func narinfoServed(t *testing.T, from, node *host, p store.Path) bool {
	url := fmt.Sprintf("http://%s:%d/%s.narinfo", node.ns.Addr, substitutePort, p.HashPart())
	err := from.ns.Command(context.Background(), "curl", "-sf", "-o", "/dev/null", url).Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	return err == nil
}
