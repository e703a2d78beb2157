package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Mount flags of everything the builder may write: no setuid programs, no
// device nodes of its own.
const (
	noSuidDev = unix.MS_NOSUID | unix.MS_NODEV
	readOnly  = unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV
)

// devices are the host device nodes shown in /dev, as the daemons show
// them.
var devices = []string{"null", "zero", "full", "random", "urandom", "tty"}

// buildRoot makes the builder's root on s.Root, still below the host's root:
// a small tmpfs holding /dev, /proc, /etc, /tmp, the store directory and the
// build directory, and the extra paths. Nothing else of the host is there.
func buildRoot(s *helperSpec) error {
	// Private first: without it a mount below could appear on the host
	// through a shared parent.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	if err := unix.Mount("tmpfs", s.Root, "tmpfs", noSuidDev, "mode=0755,size=4m,nr_inodes=4096"); err != nil {
		return fmt.Errorf("mount root tmpfs: %w", err)
	}
	steps := []func() error{
		func() error { return makeDev(s.Root) },
		func() error { return mountProc(s.Root) },
		func() error { return makeEtc(s) },
		func() error { return mountStore(s) },
		func() error { return bindDir(s.Tmp, filepath.Join(s.Root, "tmp")) },
		func() error { return bindDir(s.BuildDir, filepath.Join(s.Root, s.BuildDirInside)) },
		func() error { return mountPaths(s.Root, s.Paths) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// makeDev fills /dev: the host's harmless devices, a private /dev/shm, and
// a devpts instance of the build's own for /dev/ptmx.
func makeDev(root string) error {
	dev := filepath.Join(root, "dev")
	for _, d := range []string{dev, dev + "/shm", dev + "/pts"} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
	}
	for _, name := range devices {
		if err := bindFile("/dev/"+name, filepath.Join(dev, name)); err != nil {
			return err
		}
	}
	if err := unix.Mount("shm", dev+"/shm", "tmpfs", noSuidDev, "mode=1777"); err != nil {
		return fmt.Errorf("mount /dev/shm: %w", err)
	}
	if err := unix.Mount("devpts", dev+"/pts", "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"); err != nil {
		return fmt.Errorf("mount devpts on /dev/pts: %w", err)
	}
	links := map[string]string{"ptmx": "pts/ptmx", "fd": "/proc/self/fd",
		"stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dev, name)); err != nil {
			return err
		}
	}
	return nil
}

// bindFile shows the host file from at to, a new empty file.
func bindFile(from, to string) error {
	f, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	f.Close()
	if err := unix.Mount(from, to, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s: %w", from, err)
	}
	return nil
}

// mountProc mounts a /proc of the build's PID namespace.
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

// makeEtc writes the passwd, group and hosts that builders expect, naming
// the builder's ids; a build with the host's network gets the host's name
// service files instead of hosts.
func makeEtc(s *helperSpec) error {
	etc := filepath.Join(s.Root, "etc")
	if err := os.Mkdir(etc, 0o755); err != nil {
		return err
	}
	files := map[string]string{
		"passwd": fmt.Sprintf("root:x:0:0:Nix build user:%[3]s:/noshell\n"+
			"nixbld:x:%[1]d:%[2]d:Nix build user:%[3]s:/noshell\n"+
			"nobody:x:65534:65534:Nobody:/:/noshell\n", insideUID, insideGID, s.BuildDirInside),
		"group": fmt.Sprintf("root:x:0:\nnixbld:!:%d:\nnogroup:x:65534:\n", insideGID),
		"hosts": "127.0.0.1 localhost\n::1 localhost\n",
	}
	if s.Network {
		for _, name := range []string{"resolv.conf", "nsswitch.conf", "services", "hosts"} {
			if _, err := os.Stat("/etc/" + name); err != nil {
				continue
			}
			delete(files, name)
			if err := bindFile("/etc/"+name, filepath.Join(etc, name)); err != nil {
				return err
			}
			if err := setReadOnly(filepath.Join(etc, name), false); err != nil {
				return err
			}
		}
	}
	for name, contents := range files {
		if err := os.WriteFile(filepath.Join(etc, name), []byte(contents), 0o444); err != nil {
			return err
		}
	}
	return nil
}

// mountStore shows the builder its view of the store directory: the
// directory View, in which each input is a read-only bind of the real item
// and the builder creates its outputs. The real store directory itself is
// never shown, so nothing else in it can be read or written.
func mountStore(s *helperSpec) error {
	// One read-only bind of the whole store; binds of its items inherit
	// the flags, one mount call each.
	if err := unix.Mount(s.RealStore, s.Staging, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind the store: %w", err)
	}
	if err := setReadOnly(s.Staging, false); err != nil {
		return err
	}
	for _, base := range s.Inputs {
		if err := showInput(s, base); err != nil {
			return fmt.Errorf("store item %s: %w", base, err)
		}
	}
	target := filepath.Join(s.Root, s.StoreDir)
	if err := os.MkdirAll(target, 0o755); err != nil {
		return err
	}
	if err := unix.Mount(s.View, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind the store view: %w", err)
	}
	if err := unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|noSuidDev, ""); err != nil {
		return fmt.Errorf("store view nosuid: %w", err)
	}
	// Staging goes with the host's root when pivot detaches it: one
	// unmount (and its RCU grace period) fewer.
	return nil
}

// showInput makes the input base appear in the view: a read-only bind of a
// directory or file, or a copy of a symlink (a bind would follow it).
func showInput(s *helperSpec, base string) error {
	from, to := filepath.Join(s.Staging, base), filepath.Join(s.View, base)
	fi, err := os.Lstat(from)
	if err != nil {
		return err
	}
	switch {
	case fi.Mode()&os.ModeSymlink != 0:
		target, err := os.Readlink(from)
		if err != nil {
			return err
		}
		return os.Symlink(target, to)
	case fi.IsDir():
		if err := os.Mkdir(to, 0o555); err != nil {
			return err
		}
		return unix.Mount(from, to, "", unix.MS_BIND, "")
	default:
		return bindFile(from, to)
	}
}

// bindDir shows the host directory from at to, created on the way,
// writable but without setuid programs or devices.
func bindDir(from, to string) error {
	if err := os.MkdirAll(to, 0o755); err != nil {
		return err
	}
	if err := unix.Mount(from, to, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s: %w", from, err)
	}
	if err := unix.Mount("", to, "", unix.MS_REMOUNT|unix.MS_BIND|noSuidDev, ""); err != nil {
		return fmt.Errorf("bind %s nosuid: %w", from, err)
	}
	return nil
}

// mountPaths shows the extra host paths read-only, each with what is
// mounted below it. Their mount points are made on the root tmpfs (or in
// /tmp), never through a symlink.
func mountPaths(root string, paths []Mount) error {
	for _, m := range paths {
		fi, err := os.Stat(m.Host)
		if err != nil {
			return fmt.Errorf("sandbox path %s=%s: %w", m.Inside, m.Host, err)
		}
		to := filepath.Join(root, m.Inside)
		if err := makeMountPoint(root, to, fi.IsDir()); err != nil {
			return fmt.Errorf("sandbox path %s=%s: %w", m.Inside, m.Host, err)
		}
		if err := unix.Mount(m.Host, to, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("sandbox path %s=%s: %w", m.Inside, m.Host, err)
		}
		if err := setReadOnly(to, true); err != nil {
			return err
		}
	}
	return nil
}

// makeMountPoint creates p below root, a directory or an empty file, and
// the directories on the way, refusing to pass through a symlink.
func makeMountPoint(root, p string, dir bool) error {
	rel, err := filepath.Rel(root, p)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return fmt.Errorf("%s: not below the root", p)
	}
	cur := root
	elems := strings.Split(rel, "/")
	for i, e := range elems {
		cur = filepath.Join(cur, e)
		fi, err := os.Lstat(cur)
		last := i == len(elems)-1
		switch {
		case err == nil && fi.Mode()&os.ModeSymlink != 0:
			return fmt.Errorf("%s is a symlink", strings.TrimPrefix(cur, root))
		case err == nil && (!last || fi.IsDir() == dir):
			continue
		case err == nil:
			return fmt.Errorf("%s exists and is not like its source", strings.TrimPrefix(cur, root))
		case !errors.Is(err, os.ErrNotExist):
			return err
		case !last || dir:
			err = os.Mkdir(cur, 0o755)
		default:
			var f *os.File
			if f, err = os.OpenFile(cur, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644); err == nil {
				f.Close()
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// setReadOnly makes the mount at p read-only, without setuid programs or
// devices, with the mounts below it if recursive.
func setReadOnly(p string, recursive bool) error {
	var flags uint
	if recursive {
		flags = unix.AT_RECURSIVE
	}
	err := unix.MountSetattr(unix.AT_FDCWD, p, flags, &unix.MountAttr{Attr_set: readOnly})
	if errors.Is(err, unix.ENOSYS) { // before Linux 5.12: the top mount only
		err = unix.Mount("", p, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|noSuidDev, "")
	}
	if err != nil {
		return fmt.Errorf("make %s read-only: %w", p, err)
	}
	return nil
}

// pivot makes root the root of the mount namespace and detaches the host's
// root, so that no path, not even through chroot tricks, leads back to the
// host's files; then it makes the root tmpfs read-only.
func pivot(root string) error {
	old := filepath.Join(root, ".old-root")
	if err := os.Mkdir(old, 0o700); err != nil {
		return err
	}
	if err := unix.PivotRoot(root, old); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return err
	}
	if err := unix.Unmount("/.old-root", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach the host's root: %w", err)
	}
	if err := os.Remove("/.old-root"); err != nil {
		return err
	}
	if err := unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|noSuidDev, ""); err != nil {
		return fmt.Errorf("make the root read-only: %w", err)
	}
	return nil
}
