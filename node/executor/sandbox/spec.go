package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Spec is one build to run.
type Spec struct {
	// Scratch is an empty directory that only the node may enter, on the
	// file system of RealStore, so that outputs can be renamed into the
	// store. Run lays out the build's root, store view and /tmp in it.
	Scratch string
	// BuildDir is the host directory the builder starts in, which the
	// caller made and filled (files passed as attributes); BuildDirInside
	// is where the builder sees it.
	BuildDir       string
	BuildDirInside string
	// StoreDir is the logical store directory (/gnu/store), RealStore the
	// directory holding its items.
	StoreDir  string
	RealStore string
	// Inputs are the base names of the store items the builder may read:
	// the closure of its inputs. They are read-only.
	Inputs []string
	// Outputs are the base names of the outputs. The builder creates them
	// in its view of the store directory; after Run they are at
	// OutputPath, owned by the node.
	Outputs []string
	// Paths are host paths shown read-only to the builder, like Nix's
	// sandbox-paths (/bin/sh=/bin/busybox).
	Paths []Mount
	// Network keeps the host's network, for fixed-output derivations, whose
	// result is checked against a hash declared in advance; /etc then holds
	// the host's resolv.conf, nsswitch.conf, services and hosts.
	Network bool
	// Builder, Args and Env are the program run, its arguments after
	// argv[0], and its whole environment.
	Builder string
	Args    []string
	Env     []string
}

// Mount shows the host path Host at Inside.
type Mount struct {
	Inside string `json:"inside"`
	Host   string `json:"host"`
}

// OutputPath is where the output named base is after Run.
func (s *Spec) OutputPath(base string) string {
	return filepath.Join(s.Scratch, "store", base)
}

// helperSpec is what the node tells the helper: the Spec with the build's
// ids and the layout of the scratch directory, with every path the helper
// mounts on already joined to the root. It travels on the helper's
// descriptor specFD, encoded by encode.
type helperSpec struct {
	Root    string // mount point of the root tmpfs
	View    string // the builder's store directory
	Staging string // mount point of the read-only store
	Tmp     string // the builder's /tmp

	RealStore   string
	StoreTarget string // where the view is mounted: the store directory below Root
	Inputs      []string
	BuildDir    string
	// BuildDirInside is the build directory as the builder sees it;
	// BuildDirTarget is where it is mounted, below Root.
	BuildDirInside string
	BuildDirTarget string
	Paths          []helperMount
	Network        bool

	// UID and GID are the builder's ids as the helper's user namespace
	// numbers them; SetGroups says whether the builder's supplementary
	// groups can be dropped (not when the node is unprivileged).
	UID       uint32
	GID       uint32
	SetGroups bool
	// MaxProcesses is the builder's RLIMIT_NPROC.
	MaxProcesses uint64

	Builder string
	Argv    []string // with argv[0]
	Env     []string
}

// helperMount is one sandbox path: the host path, and its place relative
// to the root, clean and never above it.
type helperMount struct {
	Host string
	Rel  string
}

// helperSpecFor returns what the helper needs to run s: the layout of the
// scratch directory, and the builder's ids as the helper's namespace
// numbers them.
func helperSpecFor(s *Spec, inside lease, maxProcs uint64, setGroups bool) (*helperSpec, error) {
	root := filepath.Join(s.Scratch, "root")
	h := &helperSpec{
		Root: root, View: filepath.Join(s.Scratch, "store"),
		Staging: filepath.Join(s.Scratch, "ro"), Tmp: filepath.Join(s.Scratch, "tmp"),
		RealStore: s.RealStore, StoreTarget: filepath.Join(root, s.StoreDir), Inputs: s.Inputs,
		BuildDir: s.BuildDir, BuildDirInside: s.BuildDirInside,
		BuildDirTarget: filepath.Join(root, s.BuildDirInside), Network: s.Network,
		UID: inside.uid, GID: inside.gid, SetGroups: setGroups, MaxProcesses: maxProcs,
		Builder: s.Builder, Argv: append([]string{filepath.Base(s.Builder)}, s.Args...), Env: s.Env,
	}
	for _, m := range s.Paths {
		rel, err := filepath.Rel(root, filepath.Join(root, m.Inside))
		if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
			return nil, fmt.Errorf("sandbox path %s=%s: %s: not below the root", m.Inside, m.Host, filepath.Join(root, m.Inside))
		}
		h.Paths = append(h.Paths, helperMount{Host: m.Host, Rel: rel})
	}
	return h, nil
}

// encode returns h as the helper reads it: NUL-terminated key and value
// strings, one after the other, a list being its key repeated. A string
// holding a NUL cannot be passed to the kernel anyway, and is refused.
func (h *helperSpec) encode() ([]byte, error) {
	var b []byte
	var bad string
	add := func(k, v string) {
		if strings.IndexByte(v, 0) >= 0 && bad == "" {
			bad = fmt.Sprintf("%s %q holds a NUL byte", k, v)
		}
		b = append(append(append(append(b, k...), 0), v...), 0)
	}
	flag := func(v bool) string {
		if v {
			return "1"
		}
		return "0"
	}
	for _, kv := range [][2]string{
		{"root", h.Root}, {"view", h.View}, {"staging", h.Staging}, {"tmp", h.Tmp},
		{"real-store", h.RealStore}, {"store-target", h.StoreTarget},
		{"build-dir", h.BuildDir}, {"build-dir-inside", h.BuildDirInside}, {"build-dir-target", h.BuildDirTarget},
		{"network", flag(h.Network)}, {"uid", strconv.FormatUint(uint64(h.UID), 10)},
		{"gid", strconv.FormatUint(uint64(h.GID), 10)}, {"set-groups", flag(h.SetGroups)},
		{"max-processes", strconv.FormatUint(h.MaxProcesses, 10)}, {"builder", h.Builder},
	} {
		add(kv[0], kv[1])
	}
	for _, in := range h.Inputs {
		add("input", in)
	}
	for _, m := range h.Paths {
		add("mount-host", m.Host)
		add("mount-rel", m.Rel)
	}
	for _, a := range h.Argv {
		add("arg", a)
	}
	for _, e := range h.Env {
		add("env", e)
	}
	if bad != "" {
		return nil, errors.New(bad)
	}
	return b, nil
}

// prepareScratch makes the directories of h, giving the build's host ids
// what the builder must write: its build directory (its own), its store
// view (group-writable and sticky, like a Nix chroot's store, so that it
// can create its outputs but not remove the inputs' mount points) and /tmp.
func prepareScratch(h *helperSpec, host lease) error {
	dirs := []struct {
		path string
		mode uint32 // with the sticky bit, which os.FileMode spells otherwise
	}{
		{h.Root, 0o755}, {h.View, 0o1775}, {h.Staging, 0o755}, {h.Tmp, 0o1777},
	}
	for _, d := range dirs {
		if err := os.Mkdir(d.path, 0o755); err != nil {
			return err
		}
		if err := unix.Chmod(d.path, d.mode); err != nil {
			return err
		}
	}
	if err := os.Lchown(h.View, -1, int(host.gid)); err != nil {
		return err
	}
	return chownTree(h.BuildDir, int(host.uid), int(host.gid))
}

// chownTree gives the tree at root, which the node made, to uid and gid.
func chownTree(root string, uid, gid int) error {
	return filepath.WalkDir(root, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// writeSpecFile returns a descriptor holding h, encoded, for the helper to
// read: a memory file, so the spec needs no path the helper could not
// reach.
func writeSpecFile(h *helperSpec) (*os.File, error) {
	data, err := h.encode()
	if err != nil {
		return nil, err
	}
	fd, err := unix.MemfdCreate("tbfg-build-spec", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("sandbox spec: %w", err)
	}
	f := os.NewFile(uintptr(fd), "spec")
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, fmt.Errorf("sandbox spec: %w", err)
	}
	if _, err := f.Seek(0, 0); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
