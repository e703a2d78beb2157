package executor

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// sandboxEnv names the environment variable that makes this package's init
// function set up a build namespace instead of running the program.
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
