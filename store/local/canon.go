package local

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/sys/unix"
)

// canonicalise gives the tree at root the form of a store item, as Nix does:
// files 0444 or 0555 (if the owner could execute them), directories 0555,
// every modification time 1 second after the epoch. Other file types are
// refused.
func canonicalise(root string) error {
	var dirs []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch t := d.Type(); {
		case t.IsDir():
			dirs = append(dirs, path) // fixed after their entries
			return nil
		case t&fs.ModeSymlink != 0:
			return setMtime(path)
		case t.IsRegular():
			return canonFile(path, d)
		default:
			return fmt.Errorf("%s: unsupported file type %v in a store item", path, t)
		}
	})
	if err != nil {
		return err
	}
	for _, dir := range slices.Backward(dirs) {
		if err := os.Chmod(dir, 0o555); err != nil {
			return err
		}
		if err := setMtime(dir); err != nil {
			return err
		}
	}
	return nil
}

func canonFile(path string, d fs.DirEntry) error {
	fi, err := d.Info()
	if err != nil {
		return err
	}
	mode := fs.FileMode(0o444)
	if fi.Mode()&0o100 != 0 {
		mode = 0o555
	}
	if err := os.Chmod(path, mode); err != nil {
		return err
	}
	return setMtime(path)
}

// moveCanonical renames the canonical item src to dst, which must not exist.
// Moving a directory to another parent rewrites its ".." entry, so Linux
// lets only root move one it cannot write: a read-only top directory is made
// writable for the move and canonical again in place. Everything below it
// stays read-only throughout.
func moveCanonical(src, dst string) error {
	fi, err := os.Lstat(src)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		if err := os.Chmod(src, 0o755); err != nil {
			return err
		}
	}
	if err := unix.Renameat2(unix.AT_FDCWD, src, unix.AT_FDCWD, dst, unix.RENAME_NOREPLACE); err != nil {
		return err
	}
	if !fi.IsDir() {
		return nil
	}
	if err := os.Chmod(dst, 0o555); err != nil {
		return err
	}
	return setMtime(dst)
}

// setMtime sets the access and modification times of path, not following a
// symlink, to 1.
func setMtime(path string) error {
	ts := []unix.Timespec{{Sec: 1}, {Sec: 1}}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, path, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set mtime of %s: %w", path, err)
	}
	return nil
}

// removeTree removes the tree at path, making its read-only directories
// writable first. A missing path is not an error.
func removeTree(path string) error {
	if _, err := os.Lstat(path); errNotExist(err) {
		return nil
	}
	filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o755) // best effort: RemoveAll reports what is left
		}
		return nil
	})
	return os.RemoveAll(path)
}
