package netns

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// DialContext connects to addr from inside the host's namespace, as a
// program running there would: 127.0.0.1 is the host's own loopback. It
// lets a test reach servers that listen only inside a host (an HTTP client's
// Transport.DialContext, a forwarder for a browser in the root namespace).
// The returned connection is an ordinary one of this process.
func (h *Host) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		// The thread enters the namespace and is never given back: a
		// goroutine that ends while locked takes its thread with it, so no
		// other goroutine ever runs in the host's namespace.
		runtime.LockOSThread()
		c, err := h.dialLocked(ctx, network, addr)
		done <- result{c, err}
	}()
	r := <-done
	return r.c, r.err
}

// dialLocked enters the namespace on the calling, locked thread and dials:
// the socket is created there, and stays in the namespace.
func (h *Host) dialLocked(ctx context.Context, network, addr string) (net.Conn, error) {
	f, err := os.Open(filepath.Join("/run/netns", h.Name))
	if err != nil {
		return nil, fmt.Errorf("dial %s in %s: %w", addr, h.Name, err)
	}
	defer f.Close()
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
		return nil, fmt.Errorf("dial %s in %s: enter namespace: %w", addr, h.Name, err)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}
