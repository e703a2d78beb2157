package meshtest

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestScale(t *testing.T) {
	for _, tc := range []struct {
		ci   string
		want time.Duration
	}{{"", time.Second}, {"true", 3 * time.Second}} {
		t.Setenv("CI", tc.ci)
		if got := Scale(time.Second); got != tc.want {
			t.Errorf("CI=%q: Scale(1s) = %v, want %v", tc.ci, got, tc.want)
		}
	}
}

// node is a Node whose Start waits for its context, and which records its
// Close.
type node struct{ closed bool }

func (n *node) Start(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
func (n *node) Close() error                    { n.closed = true; return nil }

func TestStartBoundedAndClosed(t *testing.T) {
	n := &node{}
	t.Run("start", func(t *testing.T) {
		if err := Start(t, n, 10*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Start of a node that never starts = %v, want the deadline", err)
		}
	})
	if !n.closed {
		t.Error("node not closed when its test ended")
	}
}

// applier records the command it commits and the deadline it got.
type applier struct {
	cmd      string
	deadline bool
}

func (a *applier) Apply(ctx context.Context, cmd []byte) ([]byte, error) {
	a.cmd = string(cmd)
	_, a.deadline = ctx.Deadline()
	return nil, errors.New("no leader")
}

func TestApply(t *testing.T) {
	a := &applier{}
	if err := Apply(a, []byte("x")); err == nil || a.cmd != "x" || !a.deadline {
		t.Errorf("Apply = %v, committed %q with a deadline %v; want the error, x and a deadline", err, a.cmd, a.deadline)
	}
}
