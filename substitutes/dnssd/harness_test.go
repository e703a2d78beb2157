package dnssd

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/avahitest"
	"github.com/tbfg/tbfg-node/internal/citest"

	"github.com/tbfg/tbfg-node/internal/netns"
)

// The test binary runs as the advertising program inside a namespace when
// helperEnv is set; the other variables carry its Config.
const (
	helperEnv      = "TBFG_DNSSD_HELPER"
	helperInstance = "TBFG_DNSSD_INSTANCE"
	helperPort     = "TBFG_DNSSD_PORT"
	helperIfaces   = "TBFG_DNSSD_INTERFACES"
	helperHost     = "TBFG_DNSSD_HOSTNAME"
	helperBackend  = "TBFG_DNSSD_BACKEND"
	helperBus      = "TBFG_DNSSD_BUS"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(helperMain())
	}
	os.Exit(m.Run())
}

// helperMain advertises the service its environment describes, prints
// "ready <backend> <instance>", withdraws it when stdin closes, and prints
// "closed".
func helperMain() int {
	port, _ := strconv.Atoi(os.Getenv(helperPort))
	cfg := Config{
		Instance:    os.Getenv(helperInstance),
		Port:        port,
		HostName:    os.Getenv(helperHost),
		Backend:     Backend(os.Getenv(helperBackend)),
		DBusAddress: os.Getenv(helperBus),
		Logger:      slog.New(slog.NewTextHandler(os.Stderr, nil)),
	}
	if s := os.Getenv(helperIfaces); s != "" {
		cfg.Interfaces = strings.Split(s, ",")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ad, err := Advertise(ctx, cfg)
	cancel() // the advertisement must outlive the context of its start
	if err != nil {
		fmt.Fprintln(os.Stderr, "advertise:", err)
		return 1
	}
	fmt.Printf("ready %s %s\n", ad.Backend(), ad.Instance())
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := ad.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "close:", err)
		return 1
	}
	if err := ad.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "second close:", err)
		return 1
	}
	fmt.Println("closed")
	return 0
}

// requireTools skips (or fails under CI=true, see citest) unless the named
// programs, given with their Debian packages, are installed.
func requireTools(t *testing.T, toolPackages ...string) {
	t.Helper()
	for i := 0; i+1 < len(toolPackages); i += 2 {
		citest.Tool(t, toolPackages[i], toolPackages[i+1])
	}
}

// requireNamespaces skips (or fails under CI=true, see citest) unless this
// process can build namespace hosts and run Avahi in them.
func requireNamespaces(t *testing.T) {
	t.Helper()
	citest.Root(t, "network namespaces for the test hosts")
	requireTools(t, "ip", "iproute2")
	requireTools(t, "dbus-daemon", "dbus-daemon", "avahi-daemon", "avahi-daemon", "avahi-browse", "avahi-utils")
	if err := netns.RemoveStale(); err != nil {
		t.Logf("removing stale namespaces: %v", err)
	}
}

// newLAN creates a network of n namespace hosts, removed at cleanup.
func newLAN(t *testing.T, n int) []*netns.Host {
	t.Helper()
	network, err := netns.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := network.Close(); err != nil {
			t.Errorf("remove namespaces: %v", err)
		}
	})
	hosts := make([]*netns.Host, n)
	for i := range hosts {
		if hosts[i], err = network.AddHost(); err != nil {
			t.Fatal(err)
		}
	}
	return hosts
}

// command prepares a program in host's namespace, or in this one for nil.
func command(ctx context.Context, host *netns.Host, name string, args ...string) *exec.Cmd {
	if host == nil {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		return cmd
	}
	return host.Command(ctx, name, args...)
}

// logWriter sends a program's output to the test log.
type logWriter struct {
	t    *testing.T
	name string
}

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s: %s", w.name, strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// startBus runs a private system bus in host's namespace (this one for nil)
// with its socket in dir, and returns its address once it accepts clients.
func startBus(t *testing.T, host *netns.Host, dir string) string {
	t.Helper()
	requireTools(t, "dbus-daemon", "dbus-daemon")
	return avahitest.StartBus(t, hostCommand(host), dir)
}

// startAvahiDaemon runs avahi-daemon in host's namespace on the bus at bus,
// with a private /run, and waits until it runs.
func startAvahiDaemon(t *testing.T, host *netns.Host, bus, dir, hostName string) *exec.Cmd {
	t.Helper()
	return avahitest.StartAvahi(t, hostCommand(host), bus, dir, hostName)
}

// hostCommand makes commands that run in host's namespace (this one for nil).
func hostCommand(host *netns.Host) avahitest.Command {
	return func(ctx context.Context, name string, args ...string) *exec.Cmd {
		return command(ctx, host, name, args...)
	}
}

// helper is an advertising test binary running in a namespace.
type helper struct {
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	lines    chan string
	backend  Backend
	instance string
}

// startHelper runs the test binary as an advertiser in host's namespace with
// env (helper* variables) and waits for it to report ready.
func startHelper(t *testing.T, host *netns.Host, env map[string]string) *helper {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := host.Command(context.Background(), exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(cmd.Env, "DBUS_SYSTEM_BUS_ADDRESS="+env[helperBus])
	cmd.Stderr = logWriter{t, "advertiser"}
	h := &helper{cmd: cmd, lines: make(chan string, 4)}
	if h.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	go func() {
		defer close(h.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			h.lines <- sc.Text()
		}
	}()
	fields := strings.SplitN(h.next(t, 40*time.Second), " ", 3)
	if len(fields) != 3 || fields[0] != "ready" {
		t.Fatalf("advertiser said %q, want ready <backend> <instance>", fields)
	}
	h.backend, h.instance = Backend(fields[1]), fields[2]
	return h
}

// next returns the helper's next output line.
func (h *helper) next(t *testing.T, d time.Duration) string {
	t.Helper()
	select {
	case line, ok := <-h.lines:
		if !ok {
			t.Fatalf("advertiser exited: %v", h.cmd.Wait())
		}
		return line
	case <-time.After(d):
		t.Fatalf("advertiser silent for %v", d)
		return ""
	}
}

// stop makes the helper withdraw its service and checks that it exits
// cleanly.
func (h *helper) stop(t *testing.T) {
	t.Helper()
	_ = h.stdin.Close()
	if line := h.next(t, 15*time.Second); line != "closed" {
		t.Fatalf("advertiser said %q after stdin closed, want closed", line)
	}
	if err := h.cmd.Wait(); err != nil {
		t.Fatalf("advertiser: %v", err)
	}
}

// service is one resolved line of avahi-browse -p.
type service struct {
	iface, protocol, name, host, address string
	port                                 int
}

// browse lists the _guix_publish._tcp services the avahi-daemon on bus sees,
// running avahi-browse -rpt in host's namespace.
func browse(t *testing.T, host *netns.Host, bus string) []service {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := host.Command(ctx, "avahi-browse", "-rpt", ServiceType)
	cmd.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+bus)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("avahi-browse: %v\n%s", err, out)
	}
	return parseBrowse(string(out))
}

// parseBrowse reads avahi-browse -p output, keeping resolved ("=") lines.
func parseBrowse(out string) []service {
	var list []service
	for _, v := range avahitest.ParseBrowse(out) {
		list = append(list, service{iface: v.Interface, protocol: v.Protocol, name: v.Name,
			host: v.Host, address: v.Address, port: v.Port})
	}
	return list
}

func mkdir(dir string) error { return os.MkdirAll(dir, 0o755) }
