package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// command returns the helper's command: this program again, as PID 1 of new
// user, mount, PID, UTS, IPC and (unless the build keeps the host's)
// network namespaces, in the build's cgroup if there is one.
func (s *Sandbox) command(cg *buildCgroup, network bool) *exec.Cmd {
	// /proc/self/exe is this very program even if its file was replaced or
	// deleted since it started.
	cmd := exec.Command("/proc/self/exe")
	cmd.Args = []string{"tbfg-build-sandbox"}
	cmd.Env = []string{helperEnv + "=1"}
	cmd.Dir = "/"
	attr := &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS | syscall.CLONE_NEWPID |
			syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC,
		Setpgid:   true,
		Pdeathsig: syscall.SIGKILL, // the node's death ends its builds
	}
	if !network {
		attr.Cloneflags |= syscall.CLONE_NEWNET
	}
	if s.ids != nil {
		// Root maps every id as it is: the helper keeps root's access to
		// the files it binds, but its capabilities reach only namespaces
		// it owns, and it can map the builder to any id of the pool.
		attr.UidMappings, attr.GidMappings = s.uidMap, s.gidMap
		attr.GidMappingsEnableSetgroups = true
	} else {
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
	}
	if cg != nil {
		attr.UseCgroupFD, attr.CgroupFD = true, cg.fd
	}
	cmd.SysProcAttr = attr
	return cmd
}

// runHelper runs the helper for h and returns how the build ended.
func (s *Sandbox) runHelper(ctx context.Context, h *helperSpec, lim Limits, log io.Writer) error {
	var cg *buildCgroup
	if s.cgroups != nil {
		var err error
		if cg, err = s.cgroups.create(); err != nil {
			return fmt.Errorf("%w: %v", ErrSetup, err)
		}
		defer func() {
			if err := cg.remove(); err != nil {
				s.log.Warn("build cgroup left behind", "err", err)
			}
		}()
	}
	specFile, err := writeSpecFile(h)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSetup, err)
	}
	defer specFile.Close()
	cmd := s.command(cg, h.Network)
	status, killed, err := supervise(ctx, cmd, specFile, log, lim, cg)
	if err != nil {
		return err
	}
	if killed != nil {
		return killed
	}
	if cg != nil && cg.oomKilled() {
		return ErrOutOfMemory
	}
	return parseStatus(status, cmd.ProcessState)
}

// parseStatus turns the helper's status line into Run's error.
func parseStatus(line string, ps *os.ProcessState) error {
	kind, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
	n, _ := strconv.Atoi(rest)
	switch kind {
	case "exit":
		if n == 0 {
			return nil
		}
		return &ExitError{Code: n}
	case "signal":
		return &ExitError{Code: -1, Signal: n}
	case "exec:":
		return fmt.Errorf("%w: %s", ErrExec, rest)
	case "setup:":
		return fmt.Errorf("%w: %s", ErrSetup, rest)
	}
	return fmt.Errorf("%w: helper ended without a status (%v)", ErrSetup, ps)
}

// supervise starts cmd with spec on specFD, copies its output to log and
// kills the build when ctx ends, the timeout passes or it stays silent too
// long. It returns the helper's status line and, if the build was killed,
// why. Killing the helper, PID 1 of the build's namespace, kills every
// process of the build; the cgroup kills them all at once where it can.
func supervise(ctx context.Context, cmd *exec.Cmd, spec *os.File, log io.Writer, lim Limits, cg *buildCgroup) (status string, killed, err error) {
	if log == nil {
		log = io.Discard
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return "", nil, fmt.Errorf("%w: %v", ErrSetup, err)
	}
	statusR, statusW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return "", nil, fmt.Errorf("%w: %v", ErrSetup, err)
	}
	cmd.Stdout, cmd.Stderr = outW, outW
	cmd.ExtraFiles = []*os.File{statusW, spec} // statusFD, specFD
	err = cmd.Start()
	outW.Close()
	statusW.Close()
	if err != nil {
		outR.Close()
		statusR.Close()
		return "", nil, fmt.Errorf("%w: start helper in new namespaces: %v%s", ErrSetup, err, startHint(err))
	}
	activity := make(chan struct{}, 1)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		copyLog(log, outR, activity)
	}()
	statusLine := make(chan string, 1)
	go func() {
		msg, _ := io.ReadAll(io.LimitReader(statusR, 64<<10))
		statusR.Close()
		statusLine <- string(msg)
	}()
	killed = wait(ctx, cmd, activity, lim, cg)
	<-copied // every writer is dead: the namespace went with its PID 1
	outR.Close()
	return <-statusLine, killed, nil
}

// startHint says what to check when the kernel refuses the namespaces.
func startHint(err error) string {
	for _, e := range []error{unix.ENOSPC, unix.EUSERS, unix.EPERM, unix.EACCES} {
		if errors.Is(err, e) {
			return " (the kernel refuses to create a user namespace: check the sysctls user.max_user_namespaces, " +
				"kernel.unprivileged_userns_clone and kernel.apparmor_restrict_unprivileged_userns)"
		}
	}
	return ""
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

// wait waits for cmd, killing the build on a limit or cancellation, and
// says which one it was.
func wait(ctx context.Context, cmd *exec.Cmd, activity <-chan struct{}, lim Limits, cg *buildCgroup) error {
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	timeout, silence := timerOrNil(lim.Timeout), timerOrNil(lim.MaxSilent)
	defer stopTimers(timeout, silence)
	var reason error
	for {
		select {
		case <-done:
			return reason
		case <-activity:
			if silence != nil && reason == nil {
				silence.Reset(lim.MaxSilent)
			}
			continue
		case <-timerC(timeout):
			reason = ErrTimeout
		case <-timerC(silence):
			reason = ErrSilent
		case <-ctx.Done():
			reason = ctx.Err()
		}
		if cg != nil {
			cg.kill()
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
