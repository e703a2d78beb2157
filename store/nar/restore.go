package nar

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Restore unpacks the NAR read from r as dir, which must not exist yet, with a
// Reader's default limits. See (*Reader).Restore.
func Restore(r io.Reader, dir string) error {
	return NewReader(r).Restore(dir)
}

// Restore unpacks the rest of the archive (which must not have been advanced
// yet) as dir, which must not exist yet; its parent must. The root of the
// archive becomes dir: a directory, a regular file or a symlink.
//
// Everything is first written into a new temporary directory next to dir and
// renamed to dir only once the whole archive has been read and checked; on any
// error the temporary directory is removed and dir never appears. Every object
// is created relative to its parent directory's descriptor with O_EXCL and
// O_NOFOLLOW semantics, so no symlink (from the archive or planted by someone
// else) is ever followed and nothing is written outside the temporary
// directory. Regular files get mode 0666 or 0777 (executables) and directories
// 0777, less the umask. Data is not synced to disk.
func (nr *Reader) Restore(dir string) error {
	dir = filepath.Clean(dir)
	if nr.next != stepStart || nr.err != nil {
		return fmt.Errorf("restore %s: %w: reader already advanced", dir, ErrWriteOrder)
	}
	if _, err := os.Lstat(dir); err == nil {
		return fmt.Errorf("restore %s: %w", dir, ErrExists)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("restore: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".restore-")
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	buf := getBuf()
	defer putBuf(buf)
	rs := &restorer{nr: nr, buf: buf[:cap(buf)]}
	err = rs.run(tmp)
	rs.closeAll()
	if err == nil {
		err = renameNoReplace(filepath.Join(tmp, "root"), dir)
	}
	if err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("restore %s: %w", dir, err)
	}
	if err := os.Remove(tmp); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	return nil
}

// restorer holds the open descriptors of the directories being filled.
type restorer struct {
	nr   *Reader
	dirs []restoreDir
	buf  []byte
}

type restoreDir struct {
	path string // archive path
	fd   int
}

// run restores the archive as tmp/root.
func (rs *restorer) run(tmp string) error {
	fd, err := unix.Open(tmp, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", tmp, err)
	}
	rs.dirs = append(rs.dirs, restoreDir{path: "", fd: fd})
	for {
		h, err := rs.nr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := rs.create(h); err != nil {
			var fe *FormatError
			if errors.As(err, &fe) {
				return err
			}
			return fmt.Errorf("entry %q: %w", h.Path, err)
		}
	}
}

// create makes the object for h in its parent directory.
func (rs *restorer) create(h *Header) error {
	parent, name := splitPath(h.Path)
	if h.Path == "/" {
		parent, name = "", "root"
	}
	// The Reader returns entries depth first, so h's parent is open: close the
	// directories that were finished since.
	for len(rs.dirs) > 1 && rs.dirs[len(rs.dirs)-1].path != parent {
		rs.closeTop()
	}
	if rs.dirs[len(rs.dirs)-1].path != parent {
		return fmt.Errorf("%w: parent %q is not open", ErrWriteOrder, parent) // unreachable with a Reader
	}
	dirfd := rs.dirs[len(rs.dirs)-1].fd
	switch h.Type {
	case TypeDirectory:
		return rs.mkdir(dirfd, name, h.Path)
	case TypeSymlink:
		return unix.Symlinkat(h.LinkTarget, dirfd, name)
	default:
		return rs.writeFile(dirfd, name, h)
	}
}

func (rs *restorer) mkdir(dirfd int, name, path string) error {
	if err := unix.Mkdirat(dirfd, name, 0o777); err != nil {
		return fmt.Errorf("mkdir: %w", err)
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open directory: %w", err)
	}
	rs.dirs = append(rs.dirs, restoreDir{path: path, fd: fd})
	return nil
}

func (rs *restorer) writeFile(dirfd int, name string, h *Header) error {
	mode := uint32(0o666)
	if h.Executable {
		mode = 0o777
	}
	fd, err := unix.Openat(dirfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	for {
		n, err := rs.nr.Read(rs.buf)
		if n > 0 {
			if _, werr := f.Write(rs.buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return f.Close()
		}
		if err != nil {
			return err
		}
	}
}

func (rs *restorer) closeTop() {
	unix.Close(rs.dirs[len(rs.dirs)-1].fd)
	rs.dirs = rs.dirs[:len(rs.dirs)-1]
}

func (rs *restorer) closeAll() {
	for len(rs.dirs) > 0 {
		rs.closeTop()
	}
}

// renameNoReplace renames from to to, failing if to exists (even as an empty
// directory, which plain rename would replace).
func renameNoReplace(from, to string) error {
	err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EEXIST) {
		return ErrExists
	}
	if err != nil {
		return fmt.Errorf("rename into place: %w", err)
	}
	return nil
}
