package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// probeEnv makes this package's init function check, as the builder of a
// probe build, that the sandbox is what it should be.
const probeEnv = "TBFG_BUILD_SANDBOX_PROBE"

// probe runs a build through every step a real one takes, with this very
// program as its builder, which then checks what it sees. Its error names
// the step the kernel refused.
func (s *Sandbox) probe(dir string) error {
	scratch, err := os.MkdirTemp(dir, "probe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	store := filepath.Join(scratch, "real-store")
	top := filepath.Join(scratch, "top")
	for _, d := range []string{store, top} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return err
		}
	}
	spec := &Spec{
		Scratch: scratch, BuildDir: top, BuildDirInside: "/build",
		StoreDir: "/probe/store", RealStore: store,
		// The helper's own binary may need the host's shared libraries.
		Paths:   hostLibraries(),
		Builder: "/proc/self/exe", Env: []string{probeEnv + "=1"},
	}
	var log bytes.Buffer
	if err := s.Run(context.Background(), spec, Limits{}, &log); err != nil {
		if out := strings.TrimSpace(log.String()); out != "" {
			return fmt.Errorf("%w: %s", err, out)
		}
		return err
	}
	return nil
}

// hostLibraries are the host directories a dynamically linked program
// loads from, when they exist.
func hostLibraries() []Mount {
	var out []Mount
	for _, d := range []string{"/usr", "/lib", "/lib64", "/lib32", "/libx32"} {
		if _, err := os.Stat(d); err == nil {
			out = append(out, Mount{Inside: d, Host: d})
		}
	}
	return out
}

// probeMain is the probe build's builder: it exits 0 if the sandbox is as
// it should be, else prints what is wrong and exits 1.
func probeMain() {
	var errs []error
	for _, check := range []func() error{checkIDs, checkPrivileges, checkHost, checkNoNesting, checkDevices} {
		errs = append(errs, check())
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Printf("sandbox probe: %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func checkIDs() error {
	if os.Getuid() != insideUID || os.Getgid() != insideGID {
		return fmt.Errorf("builder runs as uid %d gid %d, want %d and %d", os.Getuid(), os.Getgid(), insideUID, insideGID)
	}
	return nil
}

// checkPrivileges checks that the builder has no capability and cannot gain
// any through execve.
func checkPrivileges() error {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return err
	}
	for _, want := range []string{"CapEff:\t0000000000000000", "CapPrm:\t0000000000000000", "NoNewPrivs:\t1"} {
		if !bytes.Contains(status, []byte(want+"\n")) {
			return fmt.Errorf("builder's /proc/self/status lacks %q", want)
		}
	}
	return nil
}

// checkHost checks the host name and that the network has only lo.
func checkHost() error {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return err
	}
	if name := unix.ByteSliceToString(u.Nodename[:]); name != "localhost" {
		return fmt.Errorf("host name %q, want localhost", name)
	}
	dev, err := os.ReadFile("/proc/net/dev")
	if err != nil {
		return err
	}
	lines := strings.Split(strings.TrimSpace(string(dev)), "\n")
	if len(lines) != 3 || !strings.HasPrefix(strings.TrimSpace(lines[2]), "lo:") {
		return fmt.Errorf("network interfaces other than lo:\n%s", dev)
	}
	return nil
}

// checkNoNesting checks that the builder cannot make a user namespace: the
// clone must fail, before the child ever tries to execute a file that does
// not exist.
func checkNoNesting() error {
	attr := &syscall.ProcAttr{Sys: &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER}}
	_, err := syscall.ForkExec("/nonexistent", []string{"nonexistent"}, attr)
	if err == nil || errors.Is(err, syscall.ENOENT) {
		return errors.New("builder could create a user namespace")
	}
	return nil
}

// checkDevices checks that /dev/null and a pseudo-terminal work.
func checkDevices() error {
	if err := os.WriteFile("/dev/null", []byte("x"), 0); err != nil {
		return err
	}
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open a pseudo-terminal: %w", err)
	}
	return ptmx.Close()
}
