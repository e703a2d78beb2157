package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// This file holds what the executors that drive a daemon's client program
// (Nix's nix-store, Guix's guix) share: running the client, streaming the
// build log it prints, bounding it, and reading its error messages.

// backstopGrace is how long a client may outlive a build's timeout before
// the node kills it. The daemon enforces the timeout itself and says so; the
// backstop only catches a daemon that does not (one waiting on a lock held
// by another client, say).
const backstopGrace = time.Minute

// clientCommand returns the command running a daemon's client program
// name with args and env (nil inherits the node's).
func clientCommand(ctx context.Context, env []string, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	// Let the client stop its builds itself (or the daemon, seeing the
	// client go), but not forever.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// withBackstop returns ctx bounded by timeout plus backstopGrace; when that
// bound ends it, context.Cause reports ErrTimedOut. A zero timeout leaves
// ctx unbounded.
func withBackstop(ctx context.Context, timeout time.Duration, client string) (context.Context, context.CancelFunc) {
	if timeout <= 0 {
		return context.WithCancel(ctx)
	}
	cause := fmt.Errorf("%w after %v: %s did not stop it itself", ErrTimedOut, timeout, client)
	return context.WithTimeoutCause(ctx, timeout+backstopGrace, cause)
}

// runBuild runs a client that builds, copying its error output, which
// carries the build log, to log, and its standard output to cmd.Stdout if
// set. On failure it returns the last 4 KiB of
// that output for the caller to classify; when ctx ended the build it
// returns ctx's cause instead.
func runBuild(ctx context.Context, cmd *exec.Cmd, log io.Writer) (stderr string, err error) {
	var last tailBuffer
	if log == nil {
		log = io.Discard
	}
	if cmd.Stdout == nil {
		cmd.Stdout = io.Discard
	}
	cmd.Stderr = io.MultiWriter(log, &last)
	err = cmd.Run()
	if err != nil && ctx.Err() != nil {
		return last.String(), context.Cause(ctx)
	}
	return last.String(), err
}

// run runs cmd and returns its standard output, or an error carrying the
// end of its error output.
func run(cmd *exec.Cmd, stdin io.Reader) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: %w: %s", cmd.Args[0], err, tail(stderr.String(), 2000))
	}
	return stdout.Bytes(), nil
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}

// exitCode is the exit status of a client that ran and failed, or an error
// when it could not be run at all.
func exitCode(err error, client string) (int, error) {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return 0, fmt.Errorf("run %s: %w", client, err)
	}
	return ee.ExitCode(), nil
}

// lastLine is the client's last error message ("error: …" and its
// continuation lines; Nix and Guix both start them so) on one line, or the
// last line of s.
func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndex(s, "error: "); i >= 0 {
		s = s[i+len("error: "):]
	} else if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return strings.Join(strings.Fields(s), " ")
}

// seconds rounds d up to whole seconds, the unit of the daemons' limits.
func seconds(d time.Duration) string {
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
}

// tailBuffer keeps the last 4 KiB written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	const max = 4 << 10
	t.b = append(t.b, p...)
	if len(t.b) > max {
		t.b = append(t.b[:0], t.b[len(t.b)-max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }
