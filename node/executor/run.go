package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// runLimits bounds one builder run.
type runLimits struct {
	timeout, maxSilent time.Duration
}

// runHelper starts cmd (the sandbox helper), copies its output to log, and
// kills it when ctx ends, the timeout passes or it stays silent too long.
// Killing the helper, PID 1 of the build's namespace, kills every process of
// the build.
func runHelper(ctx context.Context, cmd *exec.Cmd, statusR, statusW *os.File, log io.Writer, lim runLimits) error {
	if log == nil {
		log = io.Discard
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		statusR.Close()
		statusW.Close()
		return err
	}
	cmd.Stdout, cmd.Stderr = outW, outW
	err = cmd.Start()
	outW.Close()
	statusW.Close()
	if err != nil {
		outR.Close()
		statusR.Close()
		return fmt.Errorf("%w: start helper: %v", ErrSandbox, err)
	}
	activity := make(chan struct{}, 1)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		copyLog(log, outR, activity)
	}()
	status := make(chan string, 1)
	go func() {
		msg, _ := io.ReadAll(io.LimitReader(statusR, 64<<10))
		statusR.Close()
		status <- string(msg)
	}()
	waitErr, reason := supervise(ctx, cmd, activity, lim)
	<-copied // every writer is dead: the namespace went with its PID 1
	outR.Close()
	return exitError(waitErr, reason, <-status)
}

// copyLog copies the builder's output to log, signalling activity after each
// read. A failing log does not stop the build; its output is then dropped.
func copyLog(log io.Writer, r io.Reader, activity chan<- struct{}) {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if log != nil {
				if _, werr := log.Write(buf[:n]); werr != nil {
					log = nil
				}
			}
			select {
			case activity <- struct{}{}:
			default:
			}
		}
		if err != nil {
			return
		}
	}
}

// supervise waits for cmd, killing it on a limit or cancellation, and says
// which one it was.
func supervise(ctx context.Context, cmd *exec.Cmd, activity <-chan struct{}, lim runLimits) (error, error) {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	timeout, silence := timerOrNil(lim.timeout), timerOrNil(lim.maxSilent)
	defer stopTimers(timeout, silence)
	var reason error
	for {
		select {
		case err := <-done:
			return err, reason
		case <-activity:
			if silence != nil && reason == nil {
				silence.Reset(lim.maxSilent)
			}
			continue
		case <-timerC(timeout):
			reason = fmt.Errorf("%w after %v", ErrTimedOut, lim.timeout)
		case <-timerC(silence):
			reason = fmt.Errorf("%w: no output for %v", ErrSilent, lim.maxSilent)
		case <-ctx.Done():
			reason = ctx.Err()
		}
		cmd.Process.Signal(syscall.SIGKILL)
		timeout, silence = nil, nil
	}
}

func timerOrNil(d time.Duration) *time.Timer {
	if d <= 0 {
		return nil
	}
	return time.NewTimer(d)
}

// timerC is t's channel, or nil (blocking forever) for no timer.
func timerC(t *time.Timer) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C
}

func stopTimers(ts ...*time.Timer) {
	for _, t := range ts {
		if t != nil {
			t.Stop()
		}
	}
}

// exitError turns how the helper ended into the error Build reports.
func exitError(waitErr, reason error, setup string) error {
	switch {
	case reason != nil:
		return reason
	case setup != "":
		return fmt.Errorf("%w: %s", ErrSandbox, strings.TrimSpace(setup))
	case waitErr == nil:
		return nil
	}
	var ee *exec.ExitError
	if !errors.As(waitErr, &ee) {
		return fmt.Errorf("%w: %v", ErrSandbox, waitErr)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return fmt.Errorf("%w: killed by signal %v", ErrBuilderFailed, ws.Signal())
	}
	return fmt.Errorf("%w: exit status %d", ErrBuilderFailed, ee.ExitCode())
}
