package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

// requireTools skips the test unless the named programs, given with their
// Debian packages, are installed; under CI it fails instead.
func requireTools(t *testing.T, toolPackages ...string) {
	t.Helper()
	for i := 0; i+1 < len(toolPackages); i += 2 {
		if _, err := exec.LookPath(toolPackages[i]); err == nil {
			continue
		}
		msg := fmt.Sprintf("%s not found: install the Debian package %s", toolPackages[i], toolPackages[i+1])
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// busConfig lets every local user own and call anything: the bus serves one
// host's avahi-daemon and its clients only.
const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
`

// avahiConfig restricts avahi-daemon to IPv4 on eth0 and publishes nothing
// but the host name and what clients register.
const avahiConfig = `[server]
host-name=%s
domain-name=local
use-ipv4=yes
use-ipv6=no
allow-interfaces=eth0
enable-dbus=yes
ratelimit-interval-usec=1000000
ratelimit-burst=1000

[wide-area]
enable-wide-area=no

[publish]
publish-hinfo=no
publish-workstation=no

[reflector]
enable-reflector=no
`

// startAvahi runs a private system bus and an avahi-daemon on it in h's
// namespace, as a Guix System machine has, waits until the daemon runs, and
// returns the bus address. Both are killed at cleanup.
func startAvahi(t *testing.T, h *host) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), h.name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sock, conf := filepath.Join(dir, "bus"), filepath.Join(dir, "bus.conf")
	writeFile(t, conf, fmt.Sprintf(busConfig, sock))
	startDaemon(t, h.name+" dbus-daemon", h.ns.Command(context.Background(), "dbus-daemon",
		"--config-file="+conf, "--nofork", "--nopidfile", "--nosyslog"))
	bus := "unix:path=" + sock
	waitFor(t, 10*time.Second, h.name+" bus accepts clients", func() error {
		conn, err := dbus.Connect(bus)
		if err == nil {
			conn.Close()
		}
		return err
	})
	avahiConf := filepath.Join(dir, "avahi-daemon.conf")
	writeFile(t, avahiConf, fmt.Sprintf(avahiConfig, "tbfg-"+h.name))
	// ip netns exec gives the shell a mount namespace of its own, so the
	// tmpfs hides the machine's /run (pid file, socket) from this daemon only.
	script := "mount -t tmpfs -o mode=0755 tmpfs /run && mkdir -p /run/avahi-daemon && " +
		"exec avahi-daemon --file=" + avahiConf + " --no-drop-root --no-chroot --no-rlimits --no-proc-title"
	cmd := h.ns.Command(context.Background(), "sh", "-c", script)
	cmd.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+bus)
	startDaemon(t, h.name+" avahi-daemon", cmd)
	waitFor(t, 20*time.Second, h.name+" avahi-daemon running", func() error { return avahiRunning(bus) })
	return bus
}

// avahiRunning returns nil once the avahi-daemon on bus is in state running.
func avahiRunning(bus string) error {
	conn, err := dbus.Connect(bus)
	if err != nil {
		return err
	}
	defer conn.Close()
	var state int32
	err = conn.Object("org.freedesktop.Avahi", "/").Call("org.freedesktop.Avahi.Server.GetState", 0).Store(&state)
	if err == nil && state != 2 { // AVAHI_SERVER_RUNNING
		err = fmt.Errorf("avahi-daemon in state %d", state)
	}
	return err
}

// startDaemon starts cmd with its output in the test log and kills it at
// cleanup.
func startDaemon(t *testing.T, name string, cmd *exec.Cmd) {
	t.Helper()
	w := &logWriter{t: t, prefix: name + ": "}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
}

func writeFile(t *testing.T, name, data string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// service is one resolved line of avahi-browse -p.
type service struct {
	protocol, name, address string
	port                    int
}

// browse runs avahi-browse -rpt for type in h's namespace against the
// avahi-daemon on bus.
func browse(h *host, bus, typ string) ([]service, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := h.ns.Command(ctx, "avahi-browse", "-rpt", typ)
	cmd.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+bus)
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: avahi-browse: %w\n%s", h.name, err, out)
	}
	return parseBrowse(string(out)), nil
}

// parseBrowse keeps the resolved ("=") lines of avahi-browse -p output.
func parseBrowse(out string) []service {
	var list []service
	for line := range strings.Lines(out) {
		f := strings.Split(strings.TrimRight(line, "\n"), ";")
		if len(f) < 9 || f[0] != "=" {
			continue
		}
		port, _ := strconv.Atoi(f[8])
		list = append(list, service{protocol: f[2], name: unescapeAvahi(f[3]), address: f[7], port: port})
	}
	return list
}

// unescapeAvahi undoes avahi-browse's \DDD escapes (decimal byte values).
func unescapeAvahi(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.Atoi(s[i+1 : i+4]); err == nil && n < 256 {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
