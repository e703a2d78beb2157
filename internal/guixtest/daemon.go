package guixtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/citest"
	"github.com/tbfg/tbfg-node/internal/poll"
)

// Daemon is the guix-daemon program setup.sh installs.
const Daemon = "/opt/guix/bin/guix-daemon"

// SystemACL is the ACL of the machine's own guix-daemon. A private daemon
// never reads it, and StartDaemon checks that no test changed it.
const SystemACL = "/etc/guix/acl"

// DaemonOptions says how to run a private guix-daemon.
type DaemonOptions struct {
	// Command makes the command that runs name with args, e.g. in a
	// network namespace; nil runs it in the test's own namespaces. The
	// command must run until ctx is done.
	Command func(ctx context.Context, name string, args ...string) *exec.Cmd
	// Discover starts the daemon with --discover=yes: it runs `guix
	// discover`, which needs an avahi-daemon on the D-Bus system bus of
	// Env's DBUS_SYSTEM_BUS_ADDRESS, in the daemon's network namespace.
	Discover bool
	// SubstituteURLs are the daemon's own substitute servers
	// (--substitute-urls); none by default.
	SubstituteURLs []string
	// Args are more daemon flags.
	Args []string
	// Env is added to the daemon's environment.
	Env []string
}

// PrivateDaemon is a second guix-daemon for one test, beside the
// machine's: it shares the store and its database (/gnu/store,
// /var/guix/db, the build users), and has everything a test changes to
// itself. It listens on its own socket; its `guix substitute` trusts the
// keys of its own ACL (GUIX_CONFIGURATION_DIRECTORY) and caches narinfos in
// its own directory (XDG_CACHE_HOME), and its `guix discover` writes the
// servers it finds into its own state directory. So tests never restart the
// machine's daemon, never touch /etc/guix/acl, and are not misled by
// narinfos another test's daemon cached.
type PrivateDaemon struct {
	// Socket is the daemon's socket (GUIX_DAEMON_SOCKET).
	Socket string
	// ConfDir is its configuration directory: ConfDir/acl is its ACL.
	ConfDir string
	// StateDir is where its `guix discover` writes discover/publish.
	StateDir string
	// CacheDir holds its cached narinfos.
	CacheDir string

	tb     testing.TB
	exited chan struct{} // closed once the daemon has exited
	out    *syncBuffer
}

// StartDaemon starts a private guix-daemon, as setup.sh starts the
// machine's (--build-users-group=guixbuild, by default no substitute URLs),
// and stops it when tb ends. It waits until the daemon accepts connections.
// Call Require first.
func StartDaemon(tb testing.TB, opts DaemonOptions) *PrivateDaemon {
	tb.Helper()
	citest.Root(tb, "a private guix-daemon, which builds as the guixbuild users")
	keepSystemACL(tb)
	// A short directory of its own: socket names are limited to 107 bytes.
	dir, err := os.MkdirTemp("", "guixd-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	d := &PrivateDaemon{Socket: filepath.Join(dir, "socket"), ConfDir: filepath.Join(dir, "etc"),
		StateDir: filepath.Join(dir, "state"), CacheDir: filepath.Join(dir, "cache"), tb: tb, out: &syncBuffer{}}
	for _, sub := range []string{d.ConfDir, d.StateDir, d.CacheDir} {
		if err := os.Mkdir(sub, 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	wrapper := filepath.Join(dir, "guix")
	if err := os.WriteFile(wrapper, []byte(d.wrapper()), 0o755); err != nil {
		tb.Fatal(err)
	}
	d.start(opts, wrapper)
	poll.Fatal(tb, 30*time.Second, 50*time.Millisecond, "private guix-daemon accepts connections", func() error {
		select {
		case <-d.exited:
			return errors.New("the daemon exited")
		default:
		}
		c, err := net.Dial("unix", d.Socket)
		if err != nil {
			return err
		}
		return c.Close()
	})
	return d
}

// wrapper is the guix program the daemon runs (its GUIX): the real one,
// with the state directory of `guix discover` and `guix substitute`, which
// share the file of discovered servers, set to the daemon's own. The
// daemon itself keeps the machine's state directory: its database and
// build users are shared.
func (d *PrivateDaemon) wrapper() string {
	return "#!/bin/sh\ncase \"$1\" in\ndiscover|substitute) export GUIX_STATE_DIRECTORY='" + d.StateDir + "' ;;\nesac\n" +
		"exec " + Guix + " \"$@\"\n"
}

// start runs the daemon; the cleanup kills it, which kills its children
// too: guix-daemon starts them all with PR_SET_PDEATHSIG.
func (d *PrivateDaemon) start(opts DaemonOptions, wrapper string) {
	d.tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	args := []string{"--build-users-group=guixbuild", "--substitute-urls=" + strings.Join(opts.SubstituteURLs, " "),
		"--listen=" + d.Socket}
	if opts.Discover {
		args = append(args, "--discover=yes")
	}
	args = append(args, opts.Args...)
	var cmd *exec.Cmd
	if opts.Command != nil {
		cmd = opts.Command(ctx, Daemon, args...)
	} else {
		cmd = exec.CommandContext(ctx, Daemon, args...)
	}
	cmd.Env = append(append(os.Environ(), "GUIX="+wrapper, "GUIX_CONFIGURATION_DIRECTORY="+d.ConfDir,
		"XDG_CACHE_HOME="+d.CacheDir), opts.Env...)
	cmd.Stdout, cmd.Stderr = d.out, d.out
	if err := cmd.Start(); err != nil {
		cancel()
		d.tb.Fatalf("start guix-daemon: %v", err)
	}
	d.exited = make(chan struct{})
	go func() {
		cmd.Wait()
		close(d.exited)
	}()
	d.tb.Cleanup(func() {
		cancel()
		<-d.exited
		if d.tb.Failed() {
			d.tb.Logf("private guix-daemon's output:\n%s", d.out.String())
		}
	})
}

// Env is the environment of a guix command that talks to this daemon and
// whose `guix archive --authorize` edits its ACL: GUIX_DAEMON_SOCKET and
// GUIX_CONFIGURATION_DIRECTORY.
func (d *PrivateDaemon) Env() []string {
	return []string{"GUIX_DAEMON_SOCKET=" + d.Socket, "GUIX_CONFIGURATION_DIRECTORY=" + d.ConfDir}
}

// ACLFile is the daemon's ACL, absent until a key is authorized.
func (d *PrivateDaemon) ACLFile() string { return filepath.Join(d.ConfDir, "acl") }

// Command is the guix command with args, run against this daemon.
func (d *PrivateDaemon) Command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, Guix, args...)
	cmd.Env = append(os.Environ(), d.Env()...)
	return cmd
}

// Run runs guix with args against this daemon and returns its output and
// error output; err is its exit error.
func (d *PrivateDaemon) Run(args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := d.Command(ctx, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// Discovered lists the substitute URLs its `guix discover` wrote.
func (d *PrivateDaemon) Discovered() []string {
	b, err := os.ReadFile(filepath.Join(d.StateDir, "discover", "publish"))
	if err != nil {
		return nil
	}
	return strings.Fields(string(b))
}

// ForgetNarinfos empties its narinfo cache, where `guix substitute` keeps
// narinfos it found for 36 hours and misses for 10 minutes.
func (d *PrivateDaemon) ForgetNarinfos() {
	d.tb.Helper()
	entries, err := os.ReadDir(d.CacheDir)
	if err != nil {
		d.tb.Fatal(err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(d.CacheDir, e.Name())); err != nil {
			d.tb.Fatal(err)
		}
	}
}

// Output is the daemon's output so far: guix-daemon's messages and those of
// the programs it runs (guix discover's warnings).
func (d *PrivateDaemon) Output() string { return d.out.String() }

// keepSystemACL fails tb if /etc/guix/acl differs at its end from what it
// was at the start, and then puts it back byte for byte.
func keepSystemACL(tb testing.TB) {
	tb.Helper()
	before, err := os.ReadFile(SystemACL)
	if err != nil && !os.IsNotExist(err) {
		tb.Fatal(err)
	}
	existed := err == nil
	tb.Cleanup(func() {
		after, err := os.ReadFile(SystemACL)
		if existed == (err == nil) && bytes.Equal(before, after) {
			return
		}
		tb.Errorf("%s changed during the test; putting it back", SystemACL)
		if existed {
			err = os.WriteFile(SystemACL, before, 0o644)
		} else {
			err = os.Remove(SystemACL)
		}
		if err != nil {
			tb.Error(err)
		}
	})
}

// syncBuffer is a bytes.Buffer for the output of a process that runs while
// the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// errText is err with the error output of the command that failed.
func errText(err error, stderr string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w\n%s", err, strings.TrimSpace(stderr))
}
