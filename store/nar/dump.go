package nar

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Dump writes the NAR of the file system object at path (a regular file, a
// symlink or a directory tree) to w, byte for byte as `nix-store --dump` does:
// entries sorted by name bytewise, symlinks not followed, only the owner's
// executable bit kept. Sockets, devices and FIFOs are errors.
func Dump(w io.Writer, path string) error {
	nw := NewWriter(w)
	fi, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("dump: %w", err)
	}
	if err := dumpNode(nw, path, "/", fi); err != nil {
		return err
	}
	if err := nw.Close(); err != nil {
		return fmt.Errorf("dump %s: %w", path, err)
	}
	return nil
}

// dumpNode writes the object at file, whose archive path is name and whose
// lstat result is fi, and everything below it.
func dumpNode(nw *Writer, file, name string, fi fs.FileInfo) error {
	switch mode := fi.Mode(); {
	case mode.IsRegular():
		return dumpFile(nw, file, name, fi)
	case mode&fs.ModeSymlink != 0:
		target, err := os.Readlink(file)
		if err != nil {
			return fmt.Errorf("dump: %w", err)
		}
		return wrapDump(file, nw.WriteHeader(&Header{Path: name, Type: TypeSymlink, LinkTarget: target}))
	case mode.IsDir():
		return dumpDir(nw, file, name)
	default:
		return fmt.Errorf("dump %s: %w (%v)", file, ErrUnsupported, mode.Type())
	}
}

func dumpFile(nw *Writer, file, name string, fi fs.FileInfo) error {
	h := &Header{Path: name, Type: TypeRegular, Size: fi.Size(), Executable: fi.Mode()&0o100 != 0}
	if err := nw.WriteHeader(h); err != nil {
		return wrapDump(file, err)
	}
	if h.Size == 0 {
		return nil
	}
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("dump: %w", err)
	}
	defer f.Close()
	_, err = nw.copyContents(f)
	return wrapDump(file, err)
}

func dumpDir(nw *Writer, dir, name string) error {
	if err := nw.WriteHeader(&Header{Path: name, Type: TypeDirectory}); err != nil {
		return wrapDump(dir, err)
	}
	// os.ReadDir sorts by name with Go's string order, which is bytewise:
	// the order Nix uses.
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("dump: %w", err)
	}
	for _, e := range entries {
		file := filepath.Join(dir, e.Name())
		fi, err := e.Info()
		if err != nil {
			return fmt.Errorf("dump: %w", err)
		}
		if err := dumpNode(nw, file, joinPath(name, e.Name()), fi); err != nil {
			return err
		}
	}
	return nil
}

func wrapDump(file string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("dump %s: %w", file, err)
}
