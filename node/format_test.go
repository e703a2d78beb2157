package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/scheduler"
)

// newerCommand is a command of the next replicated format, as a newer
// tbfg-node would write it.
func newerCommand() []byte {
	b := scheduler.Encode(&scheduler.NodeLost{Time: time.Unix(1, 0), Node: "n1"})
	b[1] = scheduler.FormatVersion + 1
	return b
}

// TestNodeStopsOnNewerFormat: the node refuses to propose a command of a
// format its mesh cannot read; a newer-format entry that is in the log
// anyway stops it with an error naming the entry and the formats, and so
// does every later start on that log, instead of applying what follows.
func TestNodeStopsOnNewerFormat(t *testing.T) {
	dir := t.TempDir()
	r := startNode(t, loopbackConfig(t, "n1", ModeInit, dir))
	if _, err := r.n.Apply(t.Context(), newerCommand()); !errors.Is(err, scheduler.ErrFormatGate) {
		t.Fatalf("Apply of a newer command: %v; want ErrFormatGate", err)
	}
	// As a newer member would: straight to the log.
	_, _ = r.n.mesh.Apply(t.Context(), newerCommand())
	want := fmt.Sprintf("has command format %d; this tbfg-node reads formats up to %d: upgrade it",
		scheduler.FormatVersion+1, scheduler.FormatVersion)
	var err error
	select {
	case err = <-r.done:
		r.done <- err
	case <-time.After(30 * time.Second):
		t.Fatal("node still running 30s after a newer command")
	}
	var tn *scheduler.TooNewError
	if !errors.As(err, &tn) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Run = %v; want a TooNewError saying %q", err, want)
	}
	n, err := New(loopbackConfig(t, "n1-restart", ModeRun, dir))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := n.Run(ctx); !errors.As(err, &tn) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Run on a log with a newer entry = %v; want a TooNewError saying %q", err, want)
	}
}
