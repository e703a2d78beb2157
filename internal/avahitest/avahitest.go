package avahitest

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

	"github.com/tbfg/tbfg-node/internal/poll"
)

// Command makes a command that runs in the test host's network namespace.
type Command func(ctx context.Context, name string, args ...string) *exec.Cmd

// busConfig lets every local user own and call anything: the bus serves one
// test host's avahi-daemon and its clients only.
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

// StartBus runs a private system bus through command with its socket and
// configuration in dir, and returns its address once it accepts clients. It
// is killed at cleanup.
func StartBus(t testing.TB, command Command, dir string) string {
	t.Helper()
	sock, conf := filepath.Join(dir, "bus"), filepath.Join(dir, "bus.conf")
	writeFile(t, conf, fmt.Sprintf(busConfig, sock))
	startDaemon(t, "dbus-daemon", command(context.Background(), "dbus-daemon",
		"--config-file="+conf, "--nofork", "--nopidfile", "--nosyslog"))
	bus := "unix:path=" + sock
	waitFor(t, 10*time.Second, "the bus at "+sock, func() error {
		conn, err := dbus.Connect(bus)
		if err == nil {
			_ = conn.Close()
		}
		return err
	})
	return bus
}

// StartAvahi runs avahi-daemon through command on the bus at bus, named
// hostName, with its configuration in dir and a private /run, and waits until
// it runs. It is killed at cleanup.
func StartAvahi(t testing.TB, command Command, bus, dir, hostName string) *exec.Cmd {
	t.Helper()
	conf := filepath.Join(dir, "avahi-daemon.conf")
	writeFile(t, conf, fmt.Sprintf(avahiConfig, hostName))
	// ip netns exec gives the shell a mount namespace of its own whose mounts
	// do not propagate back, so the tmpfs hides the machine's /run (pid file,
	// socket) from this daemon only.
	script := "mount -t tmpfs -o mode=0755 tmpfs /run && mkdir -p /run/avahi-daemon && " +
		"exec avahi-daemon --file=" + conf + " --no-drop-root --no-chroot --no-rlimits --no-proc-title"
	cmd := command(context.Background(), "sh", "-c", script)
	cmd.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+bus)
	startDaemon(t, "avahi-daemon "+hostName, cmd)
	waitFor(t, 20*time.Second, "avahi-daemon "+hostName+" running", func() error { return Running(bus) })
	return cmd
}

// Running returns nil once the avahi-daemon on bus is in state running.
func Running(bus string) error {
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

// Service is one resolved line of `avahi-browse -p` output.
type Service struct {
	Interface, Protocol, Name, Host, Address string
	Port                                     int
}

// ParseBrowse keeps the resolved ("=") lines of `avahi-browse -p` output.
func ParseBrowse(out string) []Service {
	var list []Service
	for line := range strings.Lines(out) {
		f := strings.Split(strings.TrimRight(line, "\n"), ";")
		if len(f) < 9 || f[0] != "=" {
			continue
		}
		port, _ := strconv.Atoi(f[8])
		list = append(list, Service{Interface: f[1], Protocol: f[2], Name: unescape(f[3]), Host: f[6], Address: f[7], Port: port})
	}
	return list
}

// unescape undoes avahi-browse's \DDD escapes (decimal byte values).
func unescape(s string) string {
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

// startDaemon starts cmd with its output in the test log and kills it at
// cleanup.
func startDaemon(t testing.TB, name string, cmd *exec.Cmd) {
	t.Helper()
	w := logWriter{t: t, name: name}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
}

// logWriter sends a program's output to the test log.
type logWriter struct {
	t    testing.TB
	name string
}

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s: %s", w.name, strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func writeFile(t testing.TB, name, data string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it returns nil or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() error) {
	t.Helper()
	poll.Fatal(t, d, 100*time.Millisecond, what, cond)
}
