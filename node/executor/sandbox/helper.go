package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

const (
	// helperEnv makes this package's init function run the helper: set up
	// the sandbox described on specFD and run the builder in it.
	helperEnv = "TBFG_BUILD_SANDBOX"
	// statusFD is where the helper reports how the build ended, in one line:
	// "setup: …" (the sandbox failed), "exec: …" (the builder could not be
	// executed), "exit N" or "signal N".
	statusFD = 3
	// specFD holds the helperSpec as JSON.
	specFD = 4

	// insideUID and insideGID are the builder's ids in its user namespace,
	// those of Nix's sandbox; see DESIGN.md.
	insideUID = 1000
	insideGID = 100

	// addrNoRandomize is the personality flag ADDR_NO_RANDOMIZE.
	addrNoRandomize = 0x0040000
)

func init() {
	switch {
	// PID 1 guards against the variable leaking into an ordinary run.
	case os.Getenv(helperEnv) == "1" && os.Getpid() == 1:
		runtime.LockOSThread() // the builder inherits this thread's no_new_privs
		code, line := helper()
		status := os.NewFile(statusFD, "status")
		fmt.Fprintln(status, line)
		os.Exit(code)
	case os.Getenv(probeEnv) != "" && os.Getpid() != 1:
		probeMain()
	}
}

// helper is PID 1 of the build's namespaces: it sets up the sandbox, runs
// the builder, reaps every process orphaned to it and returns when the
// builder exits; the kernel then kills whatever of the build is left.
func helper() (int, string) {
	syscall.CloseOnExec(statusFD)
	spec, err := readSpec()
	if err == nil {
		err = setup(spec)
	}
	if err != nil {
		return 127, "setup: " + err.Error()
	}
	pid, err := startBuilder(spec)
	if err != nil {
		if execFailure(err) {
			return 127, fmt.Sprintf("exec: execute builder %s: %v", spec.Builder, err)
		}
		return 127, "setup: start builder: " + err.Error()
	}
	ws, err := reap(pid)
	switch {
	case err != nil:
		return 127, "setup: wait for builder: " + err.Error()
	case ws.Signaled():
		return 128 + int(ws.Signal()), "signal " + strconv.Itoa(int(ws.Signal()))
	default:
		return ws.ExitStatus(), "exit " + strconv.Itoa(ws.ExitStatus())
	}
}

func readSpec() (*helperSpec, error) {
	syscall.CloseOnExec(specFD)
	f := os.NewFile(specFD, "spec")
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read sandbox spec: %w", err)
	}
	var spec helperSpec
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, fmt.Errorf("read sandbox spec: %w", err)
	}
	return &spec, nil
}

// setup builds the sandbox around the helper, which then only has to start
// the builder. Each step's error says what the kernel refused.
func setup(s *helperSpec) error {
	steps := []func() error{
		// Without caps in our namespaces the builder still shares our host
		// uid when the node is unprivileged: not dumpable, we cannot be
		// ptraced or have our /proc entries read by it.
		func() error { return prctl("make the helper not dumpable", unix.PR_SET_DUMPABLE, 0) },
		func() error { return buildRoot(s) },
		func() error { return pivot(s.Root) },
		setIdentity,
		func() error { return bringUpLoopback(s.Network) },
		limitNesting,
		func() error { return setLimits(s.MaxProcesses) },
		func() error { return prctl("set no_new_privs", unix.PR_SET_NO_NEW_PRIVS, 1) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

func prctl(what string, option, arg int) error {
	if err := unix.Prctl(option, uintptr(arg), 0, 0, 0); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// setIdentity gives the UTS namespace the host and domain names the
// daemons give builds.
func setIdentity() error {
	if err := unix.Sethostname([]byte("localhost")); err != nil {
		return fmt.Errorf("set host name: %w", err)
	}
	if err := unix.Setdomainname([]byte("(none)")); err != nil {
		return fmt.Errorf("set domain name: %w", err)
	}
	return nil
}

// bringUpLoopback brings up lo, the only interface of a new network
// namespace; with the host's network there is nothing to do.
func bringUpLoopback(hostNetwork bool) error {
	if hostNetwork {
		return nil
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	ifr.SetUint16(unix.IFF_UP | unix.IFF_LOOPBACK | unix.IFF_RUNNING)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	return nil
}

// limitNesting allows one user namespace below the helper's: the
// builder's. Without it the builder could make namespaces of its own and
// hold every capability there, which opens much of the kernel to it
// (netfilter, new mounts of many file systems). The limit is counted in the
// helper's namespace, where the builder has no capability to raise it.
func limitNesting() error {
	if err := writeFile("/proc/sys/user/max_user_namespaces", "1"); err != nil {
		return fmt.Errorf("forbid nested user namespaces (user.max_user_namespaces): %w", err)
	}
	return nil
}

// setLimits bounds the number of processes of the builder's uid and turns
// off core dumps, as Nix does; the builder inherits both.
func setLimits(maxProcs uint64) error {
	if err := unix.Setrlimit(unix.RLIMIT_NPROC, &unix.Rlimit{Cur: maxProcs, Max: maxProcs}); err != nil {
		return fmt.Errorf("limit processes: %w", err)
	}
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{}); err != nil {
		return fmt.Errorf("turn off core dumps: %w", err)
	}
	// Like guix-daemon: the same addresses every run, which some builds
	// need to be reproducible (programs that dump their own memory image).
	cur, _, errno := unix.RawSyscall(unix.SYS_PERSONALITY, 0xffffffff, 0, 0)
	if errno == 0 {
		unix.RawSyscall(unix.SYS_PERSONALITY, cur|addrNoRandomize, 0, 0)
	}
	return nil
}

// startBuilder starts the builder in a user namespace of its own, as the
// unprivileged insideUID mapped to the build's ids, and a cgroup namespace
// rooted at the build's cgroup. It has no capability in any namespace the
// helper made, and keeps none past its execve.
func startBuilder(s *helperSpec) (int, error) {
	attr := &syscall.ProcAttr{
		Dir:   s.BuildDirInside,
		Env:   s.Env,
		Files: []uintptr{0, 1, 2},
		Sys: &syscall.SysProcAttr{
			Cloneflags:                 syscall.CLONE_NEWUSER | syscall.CLONE_NEWCGROUP,
			UidMappings:                []syscall.SysProcIDMap{{ContainerID: insideUID, HostID: int(s.UID), Size: 1}},
			GidMappings:                []syscall.SysProcIDMap{{ContainerID: insideGID, HostID: int(s.GID), Size: 1}},
			GidMappingsEnableSetgroups: s.SetGroups,
			// Groups is empty: the host's supplementary groups are dropped
			// where the kernel lets us.
			Credential: &syscall.Credential{Uid: insideUID, Gid: insideGID, NoSetGroups: !s.SetGroups},
			Setsid:     true,
			Pdeathsig:  syscall.SIGKILL,
		},
	}
	argv := append([]string{filepath.Base(s.Builder)}, s.Args...)
	return syscall.ForkExec(s.Builder, argv, attr)
}

// execFailure reports whether err is the builder's fault (a missing or
// unexecutable file) rather than the sandbox's.
func execFailure(err error) bool {
	for _, e := range []error{unix.ENOENT, unix.EACCES, unix.ENOEXEC, unix.ENOTDIR, unix.ELOOP, unix.E2BIG, unix.ETXTBSY} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// reap waits for every child until the builder ends, and returns its status.
// As PID 1 the helper inherits every orphan of the build.
func reap(builder int) (unix.WaitStatus, error) {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return 0, err
		case pid == builder:
			return ws, nil
		}
	}
}
