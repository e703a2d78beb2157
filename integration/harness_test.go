package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/citest"
	"github.com/tbfg/tbfg-node/internal/netns"
	"github.com/tbfg/tbfg-node/internal/poll"
)

// binary is the tbfg-node executable built once for every test of the run:
// path for the nodes, client for the commands that query them. Under the
// race detector only the nodes are instrumented: a race-built client costs
// a second of CPU per call, and the polls would starve the nodes.
var binary struct {
	once   sync.Once
	dir    string
	path   string
	client string
	err    error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binary.dir != "" {
		os.RemoveAll(binary.dir)
	}
	os.Exit(code)
}

// buildBinary builds cmd/tbfg-node once per test run, with the race detector
// when the tests run with it, and returns the node and client executables.
func buildBinary(t testing.TB) (node, client string) {
	t.Helper()
	binary.once.Do(func() {
		binary.dir, binary.err = os.MkdirTemp("", "tbfg-integration-")
		if binary.err != nil {
			return
		}
		binary.path = filepath.Join(binary.dir, "tbfg-node")
		binary.client = binary.path
		if !raceEnabled {
			binary.err = goBuild(binary.path)
			return
		}
		binary.client = filepath.Join(binary.dir, "tbfg-node-client")
		binary.err = errors.Join(goBuild(binary.path, "-race"), goBuild(binary.client))
	})
	if binary.err != nil {
		t.Fatal(binary.err)
	}
	return binary.path, binary.client
}

// goBuild builds cmd/tbfg-node into out.
func goBuild(out string, flags ...string) error {
	args := append(append([]string{"build", "-o", out}, flags...), "../cmd/tbfg-node")
	if msg, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", strings.Join(flags, " "), err, msg)
	}
	return nil
}

// requireNamespaces skips a test that needs root and iproute2, or fails it
// under CI=true (citest).
func requireNamespaces(t *testing.T) {
	t.Helper()
	citest.Root(t, "the multi-host tests make network namespaces (run `make integration` as root)")
	citest.Tool(t, "ip", "iproute2")
}

// timeScale stretches deadlines when the race detector slows every process.
func timeScale() time.Duration {
	if raceEnabled {
		return 2
	}
	return 1
}

// cluster is a network of namespace hosts running tbfg-node.
type cluster struct {
	t      *testing.T
	bin    string // the node executable
	client string // the executable for queries
	net    *netns.Network
	hosts  []*host
	flags  []string // daemon flags given to every host

	mu   sync.Mutex
	seen map[string]string // every node ID listed by any host → who listed it first
}

// newCluster creates an empty network and removes what aborted runs left.
func newCluster(t *testing.T, flags ...string) *cluster {
	t.Helper()
	requireNamespaces(t)
	bin, client := buildBinary(t)
	if err := netns.RemoveStale(); err != nil {
		t.Logf("removing networks of aborted runs: %v", err)
	}
	n, err := netns.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("remove network: %v", err)
		}
	})
	return &cluster{t: t, bin: bin, client: client, net: n, flags: flags, seen: map[string]string{}}
}

// addHost creates the next namespace host with an empty data dir.
func (c *cluster) addHost() *host {
	c.t.Helper()
	return c.addHostOn(c.net)
}

// addHostOn creates the next host on network n (a LAN of a netns.NAT).
func (c *cluster) addHostOn(n *netns.Network) *host {
	c.t.Helper()
	nh, err := n.AddHost()
	if err != nil {
		c.t.Fatal(err)
	}
	h := &host{c: c, ns: nh, name: fmt.Sprintf("h%d", len(c.hosts)+1), dataDir: c.t.TempDir()}
	c.hosts = append(c.hosts, h)
	c.t.Cleanup(h.stop)
	return h
}

// host is one namespace and the tbfg-node process it runs.
type host struct {
	c       *cluster
	ns      *netns.Host
	name    string
	dataDir string
	env     []string // added to the node's environment, e.g. DBUS_SYSTEM_BUS_ADDRESS=…
	wrap    []string // a command the node runs through, e.g. setpriv to another user

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
	err    error         // cmd's exit error, valid once exited is closed
	out    *logWriter
}

// start runs `tbfg-node sub --data-dir … flags… args…` in the host's
// namespace. Its output goes to the log of the cluster's test; t is the
// (sub)test that fails if it cannot start.
func (h *host) start(t *testing.T, sub string, args ...string) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cmd != nil {
		t.Fatalf("%s: already running", h.name)
	}
	h.checkRaces(t)
	argv := append([]string{h.c.bin, sub, "--data-dir", h.dataDir}, h.c.flags...)
	argv = append(append(slices.Clone(h.wrap), argv...), args...)
	cmd := h.ns.Command(context.Background(), argv[0], argv[1:]...)
	if h.env != nil {
		cmd.Env = append(os.Environ(), h.env...)
	}
	h.out = &logWriter{t: h.c.t, prefix: h.name + ": "}
	cmd.Stdout, cmd.Stderr = h.out, h.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: start tbfg-node %s: %v", h.name, sub, err)
	}
	h.c.t.Logf("%s (%s, %s): tbfg-node %s", h.name, h.ns.Name, h.ns.Addr, strings.Join(cmd.Args[5:], " "))
	h.cmd, h.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) {
		err := cmd.Wait()
		h.mu.Lock()
		h.err = err
		h.mu.Unlock()
		close(exited)
	}(h.exited)
}

// signal sends sig to the process and waits for it to exit, at most timeout.
// It returns the exit error.
func (h *host) signal(sig syscall.Signal, timeout time.Duration) error {
	h.mu.Lock()
	cmd, exited := h.cmd, h.exited
	h.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-exited:
	case <-time.After(timeout):
		cmd.Process.Kill()
		<-exited
		return fmt.Errorf("%s: no exit %s after %s", h.name, sig, timeout)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cmd = nil
	return h.err
}

// kill ends the process with SIGKILL, as a crash would.
func (h *host) kill() {
	h.signal(syscall.SIGKILL, time.Minute)
}

// stop kills the process if it still runs; registered as a cleanup.
func (h *host) stop() {
	h.kill()
	h.checkRaces(h.c.t)
}

// checkRaces fails t if the last process's output reports a data race.
func (h *host) checkRaces(t *testing.T) {
	if h.out != nil && h.out.contains("WARNING: DATA RACE") {
		t.Errorf("%s: tbfg-node reported a data race (see its log)", h.name)
	}
}

// running reports whether the process has not exited.
func (h *host) running() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cmd == nil {
		return false
	}
	select {
	case <-h.exited:
		return false
	default:
		return true
	}
}

// cli runs a client command of tbfg-node against the host's node. The admin
// socket is a file, so the client needs no namespace.
func (h *host) cli(args ...string) ([]byte, error) {
	return h.cliInput("", args...)
}

// cliInput is cli with stdin as the command's standard input. The data dir
// flag comes first, before any positional arguments.
func (h *host) cliInput(stdin string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	all := append([]string{args[0], "--data-dir", h.dataDir}, args[1:]...)
	cmd := exec.CommandContext(ctx, h.c.client, all...)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s: tbfg-node %s: %w: %s", h.name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// statusJSON is what scripts read from `tbfg-node status --json`.
type statusJSON struct {
	ID        string   `json:"id"`
	Leader    string   `json:"leader"`
	State     string   `json:"state"`
	Addresses []string `json:"addresses"`
}

// nodeJSON is one element of `tbfg-node nodes --json`.
type nodeJSON struct {
	ID        string     `json:"id"`
	Addresses []string   `json:"addresses"`
	Suffrage  string     `json:"suffrage"`
	Leader    bool       `json:"leader"`
	LastSeen  *time.Time `json:"last_seen"`
	Systems   []string   `json:"systems"`
	Cores     int        `json:"cores"`
	MaxBuilds int        `json:"max_builds"`
}

func (h *host) status() (statusJSON, error) {
	var st statusJSON
	out, err := h.cli("status", "--json")
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return st, fmt.Errorf("%s: status --json: %w", h.name, err)
	}
	return st, nil
}

// nodes returns the host's `nodes --json`, recording every ID it lists.
func (h *host) nodes() ([]nodeJSON, error) {
	out, err := h.cli("nodes", "--json")
	if err != nil {
		return nil, err
	}
	var nodes []nodeJSON
	if err := json.Unmarshal(out, &nodes); err != nil {
		return nil, fmt.Errorf("%s: nodes --json: %w", h.name, err)
	}
	h.c.mu.Lock()
	for _, n := range nodes {
		if _, ok := h.c.seen[n.ID]; !ok {
			h.c.seen[n.ID] = h.name
		}
	}
	h.c.mu.Unlock()
	return nodes, nil
}

// waitFor polls cond until it returns nil, failing the test with cond's last
// error after timeout (scaled under the race detector). It returns how long
// it waited.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() error) time.Duration {
	t.Helper()
	start := time.Now()
	poll.Fatal(t, timeout*timeScale(), 250*time.Millisecond, what, cond)
	t.Logf("%s: after %s", what, time.Since(start).Round(time.Millisecond))
	return time.Since(start)
}

// logWriter sends a process's output to t.Log line by line with a prefix, and
// keeps it for later checks.
type logWriter struct {
	t      testing.TB
	prefix string

	mu      sync.Mutex
	partial []byte
	all     bytes.Buffer
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.all.Write(p)
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.t.Log(w.prefix + string(w.partial[:i]))
		w.partial = w.partial[i+1:]
	}
	return len(p), nil
}

// contains reports whether the output so far contains s.
func (w *logWriter) contains(s string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Contains(w.all.Bytes(), []byte(s))
}
