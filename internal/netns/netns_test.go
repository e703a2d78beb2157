package netns

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/citest"
	"github.com/tbfg/tbfg-node/internal/poll"
)

// requireRoot skips a test that needs namespaces, or fails it under
// CI=true (citest).
func requireRoot(t *testing.T) {
	t.Helper()
	citest.Root(t, "network namespaces")
	citest.Tool(t, "ip", "iproute2")
}

func TestRunIDDecodes(t *testing.T) {
	for _, tc := range []struct {
		pid int
		seq uint32
	}{{2, 1}, {4242, 35}, {4194304, 36}, {99999, 7}} {
		id := runID(tc.pid, tc.seq)
		if len(id) != len(Prefix)+6 {
			t.Errorf("runID(%d, %d) = %q: want %d characters", tc.pid, tc.seq, id, len(Prefix)+6)
		}
		for _, name := range []string{id + "br", id + "h12", id + "v250"} {
			if got, ok := ownerPID(name); !ok || got != tc.pid {
				t.Errorf("ownerPID(%q) = %d, %v; want %d", name, got, ok, tc.pid)
			}
			if len(name) > 15 && name != id+"h12" {
				t.Errorf("link name %q longer than IFNAMSIZ-1", name)
			}
		}
	}
	for _, name := range []string{"eth0", "tbfg", "tbfg!!!!!!br", "tbfg00001xbr", "docker0"} {
		if pid, ok := ownerPID(name); ok {
			t.Errorf("ownerPID(%q) = %d, want not ours", name, pid)
		}
	}
}

// ping reports whether from reaches to's address with one echo request.
func ping(from, to *Host) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := from.Command(ctx, "busybox", "ping", "-c1", "-W1", to.Addr.String()).CombinedOutput()
	if err != nil {
		return errors.New(string(out))
	}
	return nil
}

func waitFor(t *testing.T, what string, cond func() error) {
	t.Helper()
	poll.Fatal(t, 10*time.Second, 100*time.Millisecond, what, cond)
}

func TestNetworkConnectsHostsAndCutsLinks(t *testing.T) {
	requireRoot(t)
	citest.Tool(t, "busybox", "busybox-static")
	n, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Error(err)
		}
	})
	a, err := n.AddHost()
	if err != nil {
		t.Fatal(err)
	}
	b, err := n.AddHost()
	if err != nil {
		t.Fatal(err)
	}
	if a.Addr.String() != "198.18.0.1" || b.Addr.String() != "198.18.0.2" {
		t.Fatalf("addresses %s, %s; want 198.18.0.1, 198.18.0.2", a.Addr, b.Addr)
	}
	waitFor(t, "ping a→b", func() error { return ping(a, b) })
	for _, link := range []string{n.Bridge(), a.Link, b.Link} {
		if addrs := rootAddrs(t, link); addrs != "" {
			t.Errorf("root namespace has addresses on %s (%s): it could talk on the test network", link, addrs)
		}
	}
	if err := b.SetLink(false); err != nil {
		t.Fatal(err)
	}
	if err := ping(a, b); err == nil {
		t.Fatal("ping a→b succeeded with b's link down")
	}
	if err := b.SetLink(true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ping a→b after link up", func() error { return ping(a, b) })
}

func TestCloseRemovesEverything(t *testing.T) {
	requireRoot(t)
	n, err := New()
	if err != nil {
		t.Fatal(err)
	}
	h, err := n.AddHost()
	if err != nil {
		n.Close()
		t.Fatal(err)
	}
	// A context ends the sleeper if Close misses it, so that a failure
	// does not hold the test for long.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sleeper := h.Command(ctx, "sleep", "120")
	if err := sleeper.Start(); err != nil {
		n.Close()
		t.Fatal(err)
	}
	// ip netns exec enters the namespace after Start returns: until then
	// the process is not in it, and Close cannot see it.
	waitFor(t, "the sleeper in the namespace", func() error {
		out, err := exec.Command("ip", "netns", "pids", h.Name).Output()
		if err == nil && len(strings.Fields(string(out))) == 0 {
			err = errors.New("no process yet")
		}
		return err
	})
	start := time.Now()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sleeper.Wait(); err == nil || ctx.Err() != nil {
		t.Errorf("process in the namespace survived Close (it ended after %s: %v)", time.Since(start).Round(time.Second), err)
	}
	assertGone(t, n.Bridge(), h)
}

func TestRemoveStaleDeletesDeadRunsOnly(t *testing.T) {
	requireRoot(t)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	old, err := newNetwork(runID(dead.Process.Pid, 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { old.Close() })
	oldHost, err := old.AddHost()
	if err != nil {
		t.Fatal(err)
	}
	live, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { live.Close() })
	liveHost, err := live.AddHost()
	if err != nil {
		t.Fatal(err)
	}
	if err := RemoveStale(); err != nil {
		t.Fatal(err)
	}
	assertGone(t, old.Bridge(), oldHost)
	for _, p := range []string{"/sys/class/net/" + live.Bridge(), "/sys/class/net/" + liveHost.Link, "/run/netns/" + liveHost.Name} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("live network's %s removed: %v", filepath.Base(p), err)
		}
	}
}

func assertGone(t *testing.T, bridge string, h *Host) {
	t.Helper()
	for _, p := range []string{"/sys/class/net/" + bridge, "/sys/class/net/" + h.Link, "/run/netns/" + h.Name} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s still exists", p)
		}
	}
}

// rootAddrs lists the addresses link has in the root namespace.
func rootAddrs(t *testing.T, link string) string {
	t.Helper()
	out, err := exec.Command("ip", "-o", "addr", "show", "dev", link).CombinedOutput()
	if err != nil {
		t.Fatalf("ip addr show %s: %v: %s", link, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestDialContext: a server on a host's loopback is reached through
// DialContext, and not from another host.
func TestDialContext(t *testing.T) {
	requireRoot(t)
	n, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	h1, err := n.AddHost()
	if err != nil {
		t.Fatal(err)
	}
	h2, err := n.AddHost()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := h1.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "hello from h1\n")
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A process started with Pdeathsig dies with the thread that started
	// it: the thread that entered a namespace must live on. This one is
	// started from such a thread.
	child := h2.Command(ctx, "busybox", "sleep", "60")
	if err := h2.do(child.Start); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	defer func() { <-exited }()
	defer child.Process.Kill()
	for range 50 {
		c, err := h1.DialContext(ctx, "tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(c)
		c.Close()
		if err != nil || string(b) != "hello from h1\n" {
			t.Fatalf("read %q, %v from h1's loopback", b, err)
		}
	}
	select {
	case err := <-exited:
		exited <- err
		t.Errorf("a process this test started died while it dialled: %v", err)
	default:
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	if c, err := h2.DialContext(ctx, "tcp", net.JoinHostPort(h1.Addr.String(), port)); err == nil {
		c.Close()
		t.Error("h2 reached a server listening on h1's loopback")
	}
}
