package netns

import (
	"context"
	"errors"
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
	var c net.Conn
	err := h.do(func() error {
		var err error
		var d net.Dialer
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dial %s in %s: %w", addr, h.Name, err)
	}
	return c, nil
}

// Listen listens on addr inside the host's namespace, as a server running
// there would.
func (h *Host) Listen(network, addr string) (net.Listener, error) {
	var ln net.Listener
	err := h.do(func() error {
		var err error
		ln, err = net.Listen(network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen on %s in %s: %w", addr, h.Name, err)
	}
	return ln, nil
}

// do runs fn on a thread that is in the host's namespace for the time of
// the call: sockets fn creates belong to the namespace for good.
//
// The thread goes back to its own namespace afterwards rather than ending
// with a locked goroutine: a thread that ends sends the parent-death signal
// (Command's Pdeathsig) to every process it started, so ending an arbitrary
// runtime thread could kill a host's node. Only if going back fails does
// the thread stay locked, and end.
func (h *Host) do(fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		own, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("own namespace: %w", err)
			return
		}
		defer own.Close()
		target, err := os.Open(filepath.Join("/run/netns", h.Name))
		if err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("enter namespace: %w", err)
			return
		}
		err = fn()
		if rerr := unix.Setns(int(own.Fd()), unix.CLONE_NEWNET); rerr != nil {
			done <- errors.Join(err, fmt.Errorf("leave namespace: %w", rerr)) // the thread stays locked, and ends
			return
		}
		runtime.UnlockOSThread()
		done <- err
	}()
	return <-done
}
