package executor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

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
