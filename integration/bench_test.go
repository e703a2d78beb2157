package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/citest"
	"github.com/tbfg/tbfg-node/internal/poll"
	"github.com/tbfg/tbfg-node/internal/wrkbench"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/derivation"
	"github.com/tbfg/tbfg-node/substitutes/narinfo"
)

// benchNARSize is the size of the file the benchmark derivation writes:
// a quarter random bytes, the rest text, about as compressible as a
// package.
const benchNARSize = 16 << 20

// BenchmarkNodeVsNginx measures what a LAN client gets from one running
// node: wrk against its substitute server for a narinfo (which comes from
// the replicated state) and for the NAR of an output the node built, both
// uncompressed (from its store) and zstd (from its NAR cache), next to nginx
// serving the same bytes as static files in the same run. It reports
// requests per second (narinfo), MB/s (NARs) and the ratio of each pair.
// Targets: narinfo ratio ≥ 1, nar ratio ≥ 0.8.
//
//	go test -run '^$' -bench NodeVsNginx -benchtime 3x ./integration/
//
// The node runs in the root namespace on 127.0.0.1 only, without mDNS, with
// the builtin executor, so it needs root; wrk and nginx come from Debian's
// packages of those names.
func BenchmarkNodeVsNginx(b *testing.B) {
	requireRootForBench(b)
	wrk := wrkbench.RequireTool(b, "wrk", "wrk")
	nginxBin := wrkbench.RequireTool(b, "nginx", "nginx")
	n := startLoopbackNode(b)
	out := n.build(b, benchDerivation(b, benchNARSize))
	targets := []wrkbench.Target{
		{Name: "narinfo", Path: "/" + out.HashPart() + ".narinfo", Conns: 32},
		{Name: "nar", Path: "/nar/" + out.Base(), Conns: 8},
		{Name: "zstd", Path: "/nar/zstd/" + out.Base(), Conns: 8},
	}
	www := filepath.Join(b.TempDir(), "www")
	sizes := wrkbench.Mirror(b, n.url, www, targets[0].Path, targets[1].Path, targets[2].Path)
	targets[1].Size, targets[2].Size = sizes[targets[1].Path], sizes[targets[2].Path]
	b.Logf("NAR of %s: %d bytes, %d with zstd", out, targets[1].Size, targets[2].Size)
	wrkbench.Compare(b, wrk, n.url, wrkbench.StartNginx(b, nginxBin, www), targets)
}

// requireRootForBench skips a benchmark that needs root, or fails it under
// CI=true (citest).
func requireRootForBench(b *testing.B) {
	b.Helper()
	citest.Root(b, "the node benchmark runs the builtin executor's sandbox")
}

// loopbackNode is a tbfg-node that created a mesh of its own, listening on
// 127.0.0.1 only.
type loopbackNode struct {
	h   *host // for the client commands only: it has no namespace
	url string
}

// startLoopbackNode runs `tbfg-node init` on 127.0.0.1 until the benchmark
// ends, and waits until it leads its mesh.
func startLoopbackNode(b *testing.B) *loopbackNode {
	b.Helper()
	bin, client := buildBinary(b)
	subAddr := wrkbench.FreeAddr(b)
	h := &host{c: &cluster{client: client}, name: "node", dataDir: b.TempDir()}
	cmd := exec.Command(bin, "init", "--data-dir", h.dataDir, "--no-mdns",
		"--listen", "/ip4/127.0.0.1/tcp/0", "--substitute-listen", subAddr, "--http-listen", "off",
		"--executor", "builtin", "--system", nativeSystem(), "--log-level", "warn")
	out := &logWriter{t: b, prefix: "node: "}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	b.Cleanup(func() { stopBenchNode(b, cmd, exited) })
	if err := wrkbench.WaitListening(subAddr, time.Minute, exited); err != nil {
		b.Fatalf("tbfg-node: %v", err)
	}
	n := &loopbackNode{h: h, url: "http://" + subAddr}
	pollBench(b, time.Minute, "the node leads its mesh", func() error {
		st, err := h.status()
		if err == nil && (st.State != "running" || st.Leader != st.ID) {
			err = fmt.Errorf("state %q, leader %q", st.State, st.Leader)
		}
		return err
	})
	return n
}

// stopBenchNode ends a node with SIGTERM, or SIGKILL after a while.
func stopBenchNode(b *testing.B, cmd *exec.Cmd, exited chan error) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			b.Errorf("tbfg-node exit: %v", err)
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		b.Error("tbfg-node did not stop within 30s of SIGTERM")
	}
}

// build submits the .drv file drv and waits until the node serves the
// narinfo of its output with the uncompressed, gzip and zstd NARs. It
// returns the output path.
func (n *loopbackNode) build(b *testing.B, drv string) store.Path {
	b.Helper()
	if _, err := n.h.cli("submit", "--json", drv); err != nil {
		b.Fatal(err)
	}
	d, err := derivation.Parse(readBenchFile(b, drv), store.GuixDir)
	if err != nil {
		b.Fatal(err)
	}
	out := d.Outputs["out"].Path
	pollBench(b, 2*time.Minute, "the output is built and compressed", func() error {
		ni, err := getNarinfo(n.url, out)
		if err == nil && len(ni.Files) != 3 {
			err = fmt.Errorf("%d NAR variants on offer, want 3", len(ni.Files))
		}
		return err
	})
	return out
}

// getNarinfo GETs and parses the narinfo of p from a substitute server.
func getNarinfo(base string, p store.Path) (*narinfo.Narinfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/"+p.HashPart()+".narinfo", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("narinfo of %s: %s", p, resp.Status)
	}
	text, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return narinfo.Parse(text, store.GuixDir)
}

// benchDerivation writes a derivation whose output holds a file of size
// bytes into a fresh directory, under its store base name, and returns the
// file's name.
func benchDerivation(b *testing.B, size int) string {
	b.Helper()
	random := size / 4
	script := fmt.Sprintf(`set -e
mkdir "$out"
head -c %d /dev/urandom > "$out/random"
seq 1 %d | sed 's|.*|line & of /gnu/store/some-package/share/doc/file.txt|' | head -c %d > "$out/text"
`, random, (size-random)/40, size-random)
	sys := nativeSystem()
	d := &derivation.Derivation{
		Outputs:   map[string]derivation.Output{"out": {}},
		InputDrvs: map[store.Path][]string{},
		System:    sys,
		Builder:   "/bin/sh",
		Args:      []string{"-c", script},
		Env: map[string]string{"name": "bench-nar", "system": sys, "builder": "/bin/sh", "out": "",
			"PATH": "/bin:/usr/bin", "tag": fmt.Sprint(time.Now().UnixNano())},
	}
	if err := derivation.NewHasher(store.GuixDir, noBenchInputs{}).Fill(d, "bench-nar"); err != nil {
		b.Fatal(err)
	}
	p, err := derivation.StorePath(store.GuixDir, d, "bench-nar")
	if err != nil {
		b.Fatal(err)
	}
	name := filepath.Join(b.TempDir(), p.Base())
	if err := os.WriteFile(name, d.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	return name
}

// noBenchInputs is the Loader of a derivation without input derivations.
type noBenchInputs struct{}

func (noBenchInputs) Load(p store.Path) (*derivation.Derivation, error) {
	return nil, fmt.Errorf("%s: the benchmark derivation has no inputs", p)
}

func readBenchFile(b *testing.B, name string) []byte {
	b.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// pollBench calls cond until it returns nil, failing the benchmark with its
// last error after timeout.
func pollBench(b *testing.B, timeout time.Duration, what string, cond func() error) {
	b.Helper()
	poll.Fatal(b, timeout, 100*time.Millisecond, what, cond)
}
