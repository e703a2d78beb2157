package executor

// This file keeps, for tests only, the sandbox the builtin executor had before
// it ran builders unprivileged: private mount and PID namespaces whose root
// mirrors the host read-only, with the builder as root and the real store
// writable. BenchmarkSandboxCost measures the current sandbox against it, and
// the probes show what it let a derivation do.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// runLegacy runs j's builder in the legacy sandbox, which writes the outputs
// straight into the real store.
func (b *Builtin) runLegacy(ctx context.Context, j *job) error {
	root := filepath.Join(j.scratch, "root")
	if err := os.Mkdir(root, 0o700); err != nil {
		return err
	}
	st := b.cfg.Store
	spec := &sandboxSpec{
		Root: root, StoreDir: string(st.Dir()), RealStore: st.RealDir(),
		BuildDir: j.top, BuildDirInside: j.inside,
		Builder: j.req.Drv.Builder, Args: j.req.Drv.Args, Env: j.env,
	}
	targets := make([]string, 0, len(b.cfg.SandboxPaths))
	for t := range b.cfg.SandboxPaths {
		targets = append(targets, t)
	}
	sort.Strings(targets)
	for _, t := range targets {
		if b.cfg.SandboxPaths[t] == t {
			continue // the legacy root mirrors the host's already
		}
		spec.Mounts = append(spec.Mounts, mount{Target: t, Source: b.cfg.SandboxPaths[t]})
	}
	cmd, statusR, statusW, err := helperCommand(spec, filepath.Join(j.scratch, "spec.json"))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSandbox, err)
	}
	return runHelper(ctx, cmd, statusR, statusW, j.req.Log, runLimits{timeout: j.req.Timeout, maxSilent: j.req.MaxSilent})
}

// sandboxEnv names the environment variable that makes the legacy helper
// set up a build namespace instead of running the program.
const sandboxEnv = "TBFG_BUILD_SANDBOX_SPEC"

// statusFD is the descriptor on which the helper reports a setup failure. It
// is close-on-exec, so the parent reads end of file once the builder starts.
const statusFD = 3

// sandboxSpec tells the helper what to set up and run. It travels as a JSON
// file next to the build directory.
type sandboxSpec struct {
	// Root is an empty directory on which the helper mounts the tmpfs that
	// becomes the builder's root.
	Root string `json:"root"`
	// StoreDir is the logical store directory and RealStore the directory
	// mounted there.
	StoreDir  string `json:"storeDir"`
	RealStore string `json:"realStore"`
	// BuildDir is the build directory on the host, and BuildDirInside where
	// the builder sees it.
	BuildDir       string `json:"buildDir"`
	BuildDirInside string `json:"buildDirInside"`
	// Mounts are extra paths shown to the builder (sandbox-paths).
	Mounts []mount `json:"mounts"`
	// Builder, Args and Env are what the helper finally executes.
	Builder string   `json:"builder"`
	Args    []string `json:"args"`
	Env     []string `json:"env"`
}

// mount shows the host path Source at Target inside the namespace.
type mount struct {
	Target string `json:"target"`
	Source string `json:"source"`
}

// helperCommand returns the command that runs spec (saved at specFile) in new
// mount and PID namespaces, and the read end of its status pipe.
func helperCommand(spec *sandboxSpec, specFile string) (*exec.Cmd, *os.File, *os.File, error) {
	data, err := json.Marshal(spec)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := os.WriteFile(specFile, data, 0o600); err != nil {
		return nil, nil, nil, fmt.Errorf("write sandbox spec: %w", err)
	}
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return nil, nil, nil, err
	}
	// /proc/self/exe is this very program even if its file was replaced or
	// deleted since it started.
	cmd := exec.Command("/proc/self/exe")
	cmd.Args = []string{"tbfg-build-sandbox"}
	cmd.Env = []string{sandboxEnv + "=" + specFile}
	cmd.Dir = "/"
	cmd.ExtraFiles = []*os.File{statusW}
	cmd.SysProcAttr = sysProcAttr()
	return cmd, statusR, statusW, nil
}

// sysProcAttr puts the helper in new PID and mount namespaces (and a user
// namespace mapping the caller to root when not run as root). Go marks every
// mount of the new namespace private before the helper starts, so nothing
// it mounts reaches the host. When the helper (PID 1 of its namespace) dies,
// the kernel kills every process left in it.
func sysProcAttr() *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{
		Cloneflags:   syscall.CLONE_NEWPID,
		Unshareflags: syscall.CLONE_NEWNS,
		Setpgid:      true,
		Pdeathsig:    syscall.SIGKILL,
	}
	if os.Geteuid() != 0 {
		attr.Cloneflags |= syscall.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
	}
	return attr
}

func init() {
	spec := os.Getenv(sandboxEnv)
	// PID 1 guards against the variable leaking into an ordinary run.
	if spec == "" || os.Getpid() != 1 {
		return
	}
	err := runSandbox(spec) // returns only on failure
	status := os.NewFile(statusFD, "status")
	fmt.Fprintf(status, "%v", err)
	os.Exit(127)
}

// runSandbox is the helper: it builds the namespace described by the spec at
// file and executes the builder in it.
func runSandbox(file string) error {
	syscall.CloseOnExec(statusFD)
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var spec sandboxSpec
	if err := json.Unmarshal(data, &spec); err != nil {
		return fmt.Errorf("read sandbox spec: %w", err)
	}
	if err := setupRoot(&spec); err != nil {
		return err
	}
	if err := syscall.Chdir(spec.BuildDirInside); err != nil {
		return fmt.Errorf("enter build directory: %w", err)
	}
	argv := append([]string{filepath.Base(spec.Builder)}, spec.Args...)
	err = syscall.Exec(spec.Builder, argv, spec.Env)
	return fmt.Errorf("execute builder %s: %w", spec.Builder, err)
}

// stagingDir holds the extra mounts between the host side and the chroot.
const stagingDir = "/.sandbox-mounts"

// setupRoot builds the builder's root on spec.Root and changes into it: a
// tmpfs holding read-only views of the host's top-level directories (/dev
// stays writable), a fresh /tmp and /proc, the real store at the logical
// store directory, the build directory, and the extra mounts.
func setupRoot(spec *sandboxSpec) error {
	// Go made the namespace's mounts private already; doing it again costs
	// nothing, and without it a bind below could appear on the host.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	root := spec.Root
	if err := unix.Mount("tmpfs", root, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
		return fmt.Errorf("mount root tmpfs: %w", err)
	}
	skip := map[string]bool{"proc": true, "tmp": true, firstElem(spec.StoreDir): true, firstElem(spec.BuildDirInside): true}
	steps := []func() error{
		func() error { return mirror(root, "/", skip) },
		func() error { return mountStore(root, spec.StoreDir, spec.RealStore) },
		func() error { return freshDir(filepath.Join(root, "tmp"), 0o1777) },
		func() error { return bindAt(spec.BuildDir, filepath.Join(root, spec.BuildDirInside), false) },
		func() error { return mountProc(root) },
		func() error { return stageMounts(root, spec.Mounts) },
		func() error { return unix.Chroot(root) },
		func() error { return finishMounts(spec.Mounts) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// firstElem is the first element of an absolute path: "gnu" for /gnu/store.
func firstElem(p string) string {
	first, _, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	return first
}

// mirror recreates in dst the entries of the host directory src except the
// names in skip: directories and files as read-only bind mounts (except
// /dev), symlinks as the same symlinks. Sockets and the like are left out.
func mirror(dst, src string, skip map[string]bool) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("read %s: %w", src, err)
	}
	for _, e := range entries {
		if skip[e.Name()] {
			continue
		}
		from, to := filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())
		var err error
		switch t := e.Type(); {
		case t&os.ModeSymlink != 0:
			err = copySymlink(from, to)
		case t.IsDir() || t.IsRegular():
			err = bindAt(from, to, from != "/dev")
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func copySymlink(from, to string) error {
	target, err := os.Readlink(from)
	if err != nil {
		return err
	}
	return os.Symlink(target, to)
}

// bindAt creates the mount point to (a directory or an empty file, like
// from) and bind-mounts from on it with everything mounted below it.
func bindAt(from, to string, readOnly bool) error {
	fi, err := os.Stat(from)
	if err != nil {
		return fmt.Errorf("bind %s: %w", from, err)
	}
	if err := makeMountPoint(to, fi.IsDir()); err != nil {
		return err
	}
	if err := unix.Mount(from, to, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s on %s: %w", from, to, err)
	}
	if readOnly {
		return makeReadOnly(to)
	}
	return nil
}

func makeMountPoint(p string, dir bool) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if dir {
		if err := os.Mkdir(p, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
		return nil
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

// makeReadOnly makes the mount at p and every mount below it read-only in
// this namespace only.
func makeReadOnly(p string) error {
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
	err := unix.MountSetattr(unix.AT_FDCWD, p, unix.AT_RECURSIVE, attr)
	if errors.Is(err, unix.ENOSYS) { // before Linux 5.12: the top mount only
		err = unix.Mount("", p, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, "")
	}
	if err != nil {
		return fmt.Errorf("make %s read-only: %w", p, err)
	}
	return nil
}

// mountStore shows realStore at storeDir below root. Each directory on the
// way (e.g. /gnu) is a directory of the tmpfs holding read-only views of the
// host's entries there, if any, except the next one on the way.
func mountStore(root, storeDir, realStore string) error {
	elems := strings.Split(strings.TrimPrefix(storeDir, "/"), "/")
	host := "/"
	for i, e := range elems[:len(elems)-1] {
		host = filepath.Join(host, e)
		dst := filepath.Join(root, host)
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
		if fi, err := os.Stat(host); err == nil && fi.IsDir() {
			if err := mirror(dst, host, map[string]bool{elems[i+1]: true}); err != nil {
				return err
			}
		}
	}
	return bindAt(realStore, filepath.Join(root, storeDir), false)
}

func freshDir(p string, mode os.FileMode) error {
	if err := os.Mkdir(p, 0o755); err != nil {
		return err
	}
	return os.Chmod(p, mode) // Mkdir is subject to the umask
}

func mountProc(root string) error {
	p := filepath.Join(root, "proc")
	if err := os.Mkdir(p, 0o555); err != nil {
		return err
	}
	if err := unix.Mount("proc", p, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount /proc: %w", err)
	}
	return nil
}

// stageMounts binds each extra mount's source below stagingDir, while host
// paths are still reachable.
func stageMounts(root string, mounts []mount) error {
	for i, m := range mounts {
		if err := bindAt(m.Source, filepath.Join(root, stagingDir, strconv.Itoa(i)), true); err != nil {
			return fmt.Errorf("sandbox path %s=%s: %w", m.Target, m.Source, err)
		}
	}
	return nil
}

// finishMounts moves the staged mounts onto their targets, now resolved
// inside the new root (so /bin/sh follows the root's /bin symlink). A missing
// target is created only on the tmpfs, never on a view of the host.
func finishMounts(mounts []mount) error {
	for i, m := range mounts {
		staged := filepath.Join(stagingDir, strconv.Itoa(i))
		if err := prepareTarget(m.Target, staged); err != nil {
			return fmt.Errorf("sandbox path %s: %w", m.Target, err)
		}
		if err := unix.Mount(staged, m.Target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("sandbox path %s: %w", m.Target, err)
		}
		if err := makeReadOnly(m.Target); err != nil {
			return err
		}
		if err := unix.Unmount(staged, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("sandbox path %s: %w", m.Target, err)
		}
	}
	if len(mounts) > 0 {
		return os.RemoveAll(stagingDir)
	}
	return nil
}

// prepareTarget makes sure target exists, creating it like staged only when
// its parent is on the root tmpfs.
func prepareTarget(target, staged string) error {
	if _, err := os.Stat(target); err == nil {
		return nil
	}
	var parent, rootSt unix.Stat_t
	if err := unix.Stat(filepath.Dir(target), &parent); err != nil {
		return fmt.Errorf("parent directory: %w", err)
	}
	if err := unix.Stat("/", &rootSt); err != nil {
		return err
	}
	if parent.Dev != rootSt.Dev {
		return errors.New("target does not exist and would have to be created on a host file system")
	}
	fi, err := os.Stat(staged)
	if err != nil {
		return err
	}
	return makeMountPoint(target, fi.IsDir())
}

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
