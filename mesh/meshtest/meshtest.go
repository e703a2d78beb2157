package meshtest

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/citest"
	"github.com/tbfg/tbfg-node/internal/poll"
	"github.com/tbfg/tbfg-node/internal/testlog"
)

// Settings of every node of a test mesh: on loopback, on a port the kernel
// picks, gossiping often, and never removed for silence during a test.
const (
	Listen         = "/ip4/127.0.0.1/tcp/0"
	GossipInterval = 500 * time.Millisecond
	RemoveAfter    = time.Hour
)

// Secret is the mesh secret of test meshes.
var Secret = bytes.Repeat([]byte{7}, 32)

// applyTimeout bounds a commit (scaled).
const applyTimeout = 10 * time.Second

// Scale stretches a wait on slow CI machines.
func Scale(d time.Duration) time.Duration {
	if citest.Strict() {
		return 3 * d
	}
	return d
}

// WaitFor calls cond until it returns nil, failing t with cond's last
// error if that takes longer than timeout (scaled).
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	poll.Fatal(t, Scale(timeout), 20*time.Millisecond, what, cond)
}

// Logger routes a node's logs to t.Log after prefix: warnings and errors
// only, or everything when MESH_TEST_DEBUG is set. Records after the test
// ended are dropped (libp2p and Raft may log from their own goroutines a
// moment after).
func Logger(t testing.TB, prefix string) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("MESH_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return testlog.NewAt(t, prefix, level)
}

// Node is a mesh node as Start needs it; *mesh.Mesh is one.
type Node interface {
	Start(ctx context.Context) error
	Close() error
}

// Start starts n, giving up after timeout, and closes n when the test
// ends, whether it started or not.
func Start(t testing.TB, n Node, timeout time.Duration) error {
	t.Cleanup(func() { n.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return n.Start(ctx)
}

// Applier commits commands; *mesh.Mesh is one.
type Applier interface {
	Apply(ctx context.Context, cmd []byte) ([]byte, error)
}

// Apply commits cmd through a, giving up after 10 seconds (scaled).
func Apply(a Applier, cmd []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), Scale(applyTimeout))
	defer cancel()
	_, err := a.Apply(ctx, cmd)
	return err
}
