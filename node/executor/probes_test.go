package executor

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tbfg/tbfg-node/internal/citest"
	"github.com/tbfg/tbfg-node/internal/netns"
	"github.com/tbfg/tbfg-node/internal/nixtest"
	"github.com/tbfg/tbfg-node/internal/poll"
	"github.com/tbfg/tbfg-node/node/executor/sandbox"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/local"
	"github.com/tbfg/tbfg-node/store/nar"
)

// probeIDs are the build ids of the probe tests, apart from the default
// range so that a process found with one of them is a probe's.
var probeIDs = sandbox.IDRange{First: sandbox.DefaultIDs.First + 0x10000, Count: 8}

// probeMaxProcesses is the process limit of the probe builds.
const probeMaxProcesses = 64

// fileServed is what the HTTP server of the probe network serves.
const fileServed = "tbfg fixed output\n"

// secret is what the probe "secret" keeps in its build directory.
const secret = "tbfg-probe-secret"

func init() {
	// The setuid probe runs a setuid-root copy of this test binary.
	if os.Getenv("TBFG_PROBE_SUID") == "1" {
		fmt.Printf("euid=%d\n", os.Geteuid())
		os.Exit(0)
	}
}

// probeEnv is a store and executor under /var/tmp (which the legacy sandbox
// shows to builders, unlike /tmp), whose builds run in the network
// namespace of one host of a two-host network; the other host serves
// fileServed over HTTP.
type probeEnv struct {
	*env
	root   string
	client *netns.Host
	server string // HOST:PORT of the HTTP server
	args   []string
	mode   string // tells apart the derivations of each sandbox
}

func newProbeEnv(t *testing.T) *probeEnv {
	requireRoot(t)
	if err := netns.Available(); err != nil {
		citest.Missing(t, "%v", err)
	}
	root, err := os.MkdirTemp("/var/tmp", "tbfg-probe-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeAll(root) })
	st, err := local.Open(filepath.Join(root, "store"), store.GuixDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	p := &probeEnv{env: &env{nix: nixtest.New(t, store.GuixDir), store: st}, root: root}
	paths := map[string]string{"/bin/sh": "/bin/busybox", "/tmp/suid": setuidCopy(t, root)}
	for _, d := range []string{"/usr", "/lib", "/lib64"} {
		if _, err := os.Stat(d); err == nil {
			paths[d] = d
		}
	}
	p.exec, err = NewBuiltin(BuiltinConfig{Store: st, BuildDir: filepath.Join(root, "builds"), SandboxPaths: paths,
		BuildIDs: probeIDs, MaxProcesses: probeMaxProcesses})
	if err != nil {
		t.Fatal(err)
	}
	p.startNetwork(t)
	sum := sha256.Sum256([]byte(fileServed))
	wrong := sha256.Sum256([]byte("something else"))
	p.args = []string{"--argstr", "server", p.server, "--argstr", "buildRoot", filepath.Join(root, "builds"),
		"--argstr", "hash", hex.EncodeToString(sum[:]), "--argstr", "wrongHash", hex.EncodeToString(wrong[:]),
		"--argstr", "hostPid", strconv.Itoa(os.Getpid())}
	return p
}

// setuidCopy copies this test binary to a setuid-root file in dir.
func setuidCopy(t *testing.T, dir string) string {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "suid")
	if err := os.WriteFile(p, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o755|os.ModeSetuid); err != nil {
		t.Fatal(err)
	}
	return p
}

// startNetwork makes the two hosts and starts busybox httpd on the server.
func (p *probeEnv) startNetwork(t *testing.T) {
	n, err := netns.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	srv, err := n.AddHost()
	if err != nil {
		t.Fatal(err)
	}
	if p.client, err = n.AddHost(); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(p.root, "www")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "file"), []byte(fileServed), 0o644); err != nil {
		t.Fatal(err)
	}
	p.server = srv.Addr.String() + ":8080"
	ctx, cancel := context.WithCancel(context.Background())
	httpd := srv.Command(ctx, "/bin/busybox", "httpd", "-f", "-p", p.server, "-h", dir)
	if err := httpd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); httpd.Wait() })
	poll.Fatal(t, 20*time.Second, 100*time.Millisecond, "busybox httpd serves", func() error {
		return p.client.Command(context.Background(), "/bin/busybox", "wget", "-q", "-O", "/dev/null", "http://"+p.server+"/file").Run()
	})
}

// build builds attr of probes.nix from the client host's network namespace.
func (p *probeEnv) build(t *testing.T, ctx context.Context, attr string, timeout time.Duration, log io.Writer) (store.Path, *Result, error) {
	drv := p.drv(t, attr)
	res, err := p.buildDrv(ctx, Request{DrvPath: drv, Drv: p.load(t, drv), Log: log, Timeout: timeout})
	return drv, res, err
}

// buildDrv runs req from the client host's network namespace.
func (p *probeEnv) buildDrv(ctx context.Context, req Request) (*Result, error) {
	var res *Result
	err := inNetns(p.client, func() error {
		var err error
		res, err = p.exec.Build(ctx, req)
		return err
	})
	return res, err
}

// drv instantiates attr of probes.nix.
func (p *probeEnv) drv(t *testing.T, attr string) store.Path {
	return p.instantiateArgs(t, "probes.nix", append([]string{"-A", attr, "--argstr", "mode", p.mode}, p.args...)...)
}

// inNetns runs f on a thread in h's network namespace, so that the processes
// it starts are there too, and then moves the thread back. (Letting the
// thread die instead would send Pdeathsig to whatever any goroutine started
// from it earlier, such as the HTTP server.)
func inNetns(h *netns.Host, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		home, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return // the thread ends with the goroutine, still locked
		}
		defer unix.Close(home)
		if err := setns(h.Name); err != nil {
			errc <- err
			return
		}
		errc <- f()
		if unix.Setns(home, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
	}()
	return <-errc
}

// setns moves the calling thread into the named network namespace.
func setns(name string) error {
	fd, err := unix.Open("/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("enter %s: %w", name, err)
	}
	return nil
}

// probe is one attempt to get out, and how to tell whether it did.
type probe struct {
	attr    string
	timeout time.Duration
	// legacyToo runs it against the legacy sandbox, which must let it
	// escape: proof that the probe can see an escape.
	legacyToo bool
	// escaped returns what got out, or "" if nothing did.
	escaped func(t *testing.T, p *probeEnv, out string, err error) string
}

// TestSandboxProbes builds derivations that try to get out of the sandbox
// and checks that each is denied or bounded, and that no process of the
// build outlives it. Each probe except the fork bomb also runs against the
// legacy sandbox (builders as root, host network, the store writable),
// where it must escape: proof that it would catch a regression.
func TestSandboxProbes(t *testing.T) {
	p := newProbeEnv(t)
	probes := []probe{
		{"uid-map", time.Minute, true, hostRoot},
		{"mknod", time.Minute, true, saidEscaped},
		{"mount", time.Minute, true, saidEscaped},
		{"net-dev", time.Minute, true, interfacesBesidesLo},
		{"tcp", time.Minute, true, saidEscaped},
		{"write-input", time.Minute, true, inputChanged},
		{"write-store", time.Minute, true, storeWritten},
		{"other-build", time.Minute, true, secretRead},
		{"setuid", time.Minute, true, gotRoot},
		{"nproc", time.Minute, true, tooManyProcesses},
		{"fork-bomb", 3 * time.Second, false, notTimedOut},
		// The legacy sandbox's PID namespace killed these too.
		{"background", time.Minute, false, leftBehind},
		{"chroot-escape", time.Minute, true, saidEscaped},
	}
	for _, mode := range []string{"sandbox", "legacy"} {
		t.Run(mode, func(t *testing.T) {
			p.mode = mode
			if mode == "legacy" {
				p.exec.run = p.exec.runLegacy
				defer func() { p.exec.run = p.exec.runSandboxed }()
			}
			for _, pr := range probes {
				if mode == "legacy" && !pr.legacyToo {
					continue
				}
				t.Run(pr.attr, func(t *testing.T) { p.runProbe(t, pr, mode == "legacy") })
			}
		})
	}
}

// runProbe builds pr's derivation and checks the verdict.
func (p *probeEnv) runProbe(t *testing.T, pr probe, legacy bool) {
	var log bytes.Buffer
	var out string
	var err error
	switch pr.attr {
	case "other-build":
		out, err = p.buildBeside(t, &log)
	case "write-input":
		if _, _, err := p.build(t, context.Background(), "victim", time.Minute, &log); err != nil {
			t.Fatalf("build the input: %v\n%s", err, log.String())
		}
		fallthrough
	default:
		var res *Result
		if _, res, err = p.build(t, context.Background(), pr.attr, pr.timeout, &log); err == nil {
			out = readOutput(t, p.store, res)
		}
	}
	escaped := pr.escaped(t, p, out, err)
	if left := buildProcesses(); !legacy && len(left) > 0 {
		t.Errorf("processes of the build outlived it: %v", left)
	}
	switch {
	case !legacy && escaped != "":
		t.Errorf("escaped the sandbox: %s\nbuild error: %v\nlog:\n%s", escaped, err, log.String())
	case legacy && escaped == "":
		t.Errorf("did not escape the legacy sandbox, so it cannot show a regression\nbuild error: %v\noutput: %s\nlog:\n%s", err, out, log.String())
	case legacy:
		t.Logf("escaped the legacy sandbox: %s", escaped)
	default:
		t.Logf("denied: output %q, build error %v", strings.TrimSpace(out), err)
	}
}

// buildBeside builds "secret", waits until it holds its secret, and builds
// "other-build", which tries to read it, beside it.
func (p *probeEnv) buildBeside(t *testing.T, log io.Writer) (string, error) {
	ctx, cancel := context.WithCancel(context.Background())
	ready := &readyWriter{ch: make(chan struct{})}
	drv := p.drv(t, "secret")
	req := Request{DrvPath: drv, Drv: p.load(t, drv), Log: ready, Timeout: time.Minute}
	done := make(chan error, 1)
	go func() {
		_, err := p.buildDrv(ctx, req)
		done <- err
	}()
	select {
	case <-ready.ch:
	case err := <-done:
		cancel()
		return "", fmt.Errorf("the build holding the secret ended: %w", err)
	}
	_, res, err := p.build(t, context.Background(), "other-build", time.Minute, log)
	cancel()
	<-done
	if err != nil {
		return "", err
	}
	return readOutput(t, p.store, res), nil
}

// readyWriter closes ch once it has been written "ready".
type readyWriter struct {
	buf    bytes.Buffer
	ch     chan struct{}
	closed bool
}

func (w *readyWriter) Write(b []byte) (int, error) {
	w.buf.Write(b)
	if !w.closed && strings.Contains(w.buf.String(), "ready") {
		w.closed = true
		close(w.ch)
	}
	return len(b), nil
}

func readOutput(t *testing.T, st *local.Store, res *Result) string {
	real, _ := st.RealPath(res.Outputs["out"].Path)
	data, err := os.ReadFile(real)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// hostRoot: the builder's uid_map maps it to the host's root.
func hostRoot(t *testing.T, p *probeEnv, out string, err error) string {
	f := strings.Fields(out)
	if err != nil || len(f) != 3 {
		t.Fatalf("uid_map %q, %v", out, err)
	}
	if f[1] == "0" {
		return "uid_map " + strings.TrimSpace(out)
	}
	if id, _ := strconv.ParseUint(f[1], 10, 32); uint32(id) < probeIDs.First || uint32(id) > probeIDs.Last() {
		t.Errorf("builder runs as host uid %d, outside the build ids %s", id, probeIDs)
	}
	return ""
}

// saidEscaped: the probe reports an attempt that worked.
func saidEscaped(t *testing.T, p *probeEnv, out string, err error) string {
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for line := range strings.SplitSeq(out, "\n") {
		if what, ok := strings.CutPrefix(line, "escaped: "); ok {
			got = append(got, what)
		}
	}
	return strings.Join(got, "; ")
}

// interfacesBesidesLo: /proc/net/dev lists the host's interfaces.
func interfacesBesidesLo(t *testing.T, p *probeEnv, out string, err error) string {
	if err != nil {
		t.Fatal(err)
	}
	var other []string
	for _, line := range strings.Split(out, "\n")[2:] {
		if name, _, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && name != "lo" {
			other = append(other, name)
		}
	}
	return strings.Join(other, " ")
}

// inputChanged: the builder changed an input, whose NAR then no longer
// matches what the store recorded, or says it did.
func inputChanged(t *testing.T, p *probeEnv, out string, err error) string {
	said := saidEscaped(t, p, out, err)
	victim := p.load(t, p.drv(t, "victim")).Outputs["out"].Path
	info, qerr := p.store.Query(victim)
	if qerr != nil {
		t.Fatal(qerr)
	}
	real, _ := p.store.RealPath(victim)
	h := nar.NewHasher()
	if derr := nar.Dump(h, real); derr != nil || h.Sum() != info.Nar {
		return fmt.Sprintf("%s; the input's NAR no longer matches the store's record (%v)", said, derr)
	}
	return said
}

// storeWritten: something other than known items appeared in the store's
// real directory.
func storeWritten(t *testing.T, p *probeEnv, out string, err error) string {
	if err != nil {
		t.Fatal(err)
	}
	entries, rerr := os.ReadDir(p.store.RealDir())
	if rerr != nil {
		t.Fatal(rerr)
	}
	var extra []string
	for _, e := range entries {
		if strings.Contains(e.Name(), "probe-evil") {
			extra = append(extra, e.Name())
		}
	}
	return strings.Join(extra, " ")
}

// secretRead: the other build's secret is in the output.
func secretRead(t *testing.T, p *probeEnv, out string, err error) string {
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, secret) {
		return "read the other build's secret"
	}
	return ""
}

// gotRoot: the setuid program ran as root.
func gotRoot(t *testing.T, p *probeEnv, out string, err error) string {
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "euid=") {
		t.Fatalf("setuid probe printed %q", out)
	}
	if strings.HasPrefix(out, "euid=0\n") {
		return "the setuid program ran with euid 0"
	}
	return ""
}

// tooManyProcesses: more processes than the limit.
func tooManyProcesses(t *testing.T, p *probeEnv, out string, err error) string {
	if err != nil {
		t.Fatal(err)
	}
	n, cerr := strconv.Atoi(strings.TrimSpace(out))
	if cerr != nil {
		t.Fatalf("process count %q", out)
	}
	if n > probeMaxProcesses+2 { // the helper, and the ls counting
		return fmt.Sprintf("%d processes", n)
	}
	return ""
}

// notTimedOut: the fork bomb was not stopped by the build's timeout.
func notTimedOut(t *testing.T, p *probeEnv, out string, err error) string {
	if !errors.Is(err, ErrTimedOut) {
		return fmt.Sprintf("fork bomb ended with %v, not the timeout", err)
	}
	return ""
}

// leftBehind: processes of the build (sleep 61737) still run. They are
// killed.
func leftBehind(t *testing.T, p *probeEnv, out string, err error) string {
	if err != nil {
		t.Fatal(err)
	}
	pids := processesWithArg("61737")
	for _, pid := range pids {
		unix.Kill(pid, unix.SIGKILL)
	}
	if len(pids) > 0 {
		return fmt.Sprintf("processes %v still run", pids)
	}
	return ""
}

// processesWithArg returns the processes with arg among their arguments.
func processesWithArg(arg string) []int {
	var pids []int
	for _, pid := range allProcesses() {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err == nil && slices.Contains(strings.Split(string(cmdline), "\x00"), arg) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// buildProcesses returns the processes running as one of the probe build
// ids.
func buildProcesses() []int {
	var pids []int
	for _, pid := range allProcesses() {
		var st unix.Stat_t
		if unix.Stat(fmt.Sprintf("/proc/%d", pid), &st) == nil && st.Uid >= probeIDs.First && st.Uid <= probeIDs.Last() {
			pids = append(pids, pid)
		}
	}
	return pids
}

func allProcesses() []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestBuildFixedOutputDownload builds a fixed-output derivation that
// downloads a file from a server on another namespace host: it gets the
// host's network and succeeds. The same download declared with another hash
// fails, and its output is neither valid nor left in the store.
func TestBuildFixedOutputDownload(t *testing.T) {
	p := newProbeEnv(t)
	var log bytes.Buffer
	_, res, err := p.build(t, context.Background(), "download", time.Minute, &log)
	if err != nil {
		t.Fatalf("%v\nlog:\n%s", err, log.String())
	}
	if got := readOutput(t, p.store, res); got != fileServed || res.Outputs["out"].CA == "" {
		t.Errorf("downloaded %q, content address %q", got, res.Outputs["out"].CA)
	}
	drv, _, err := p.build(t, context.Background(), "download-wrong", time.Minute, &log)
	if !errors.Is(err, ErrOutputHash) {
		t.Fatalf("build with the wrong hash = %v, want ErrOutputHash\nlog:\n%s", err, log.String())
	}
	out := p.load(t, drv).Outputs["out"].Path
	real, _ := p.store.RealPath(out)
	if ok, _ := p.store.IsValid(out); ok {
		t.Errorf("%s is valid", out)
	}
	if _, err := os.Lstat(real); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s left in the store: %v", out, err)
	}
}
