package testdir

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// New returns a new temporary directory, as tb.TempDir does, whose
// read-only directories are made writable at the end of the test so that
// TempDir's own cleanup can remove it.
func New(tb testing.TB) string {
	tb.Helper()
	dir := tb.TempDir()
	tb.Cleanup(func() { // runs before TempDir's removal, registered earlier
		if err := MakeRemovable(dir); err != nil {
			tb.Error(err)
		}
	})
	return dir
}

// MakeRemovable gives the owner write and search permission on every
// directory under dir, so that everything in it can be deleted. A missing
// dir is not an error.
func MakeRemovable(dir string) error {
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode().Perm()&0o700 != 0o700 {
			return os.Chmod(path, info.Mode().Perm()|0o700)
		}
		return nil
	})
	if os.IsNotExist(err) {
		return nil
	}
	return err
}
