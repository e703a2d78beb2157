package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// Write replaces path with data, mode perm: path holds either its old
// content or all of data, never a part. Errors are those of the file
// operations, which name the files.
func Write(path string, data []byte, perm fs.FileMode) error {
	return place(path, data, perm, os.Rename)
}

// Create writes data to path, mode perm, only if path does not exist yet:
// path then either does not exist or holds all of data. If path exists it
// is left alone and the error matches fs.ErrExist.
func Create(path string, data []byte, perm fs.FileMode) error {
	// A hard link, unlike a rename, fails rather than replace its target.
	return place(path, data, perm, os.Link)
}

// place writes data to a temporary file next to path and puts it there
// with move; the temporary file is gone afterwards whatever happened.
func place(path string, data []byte, perm fs.FileMode, move func(tmp, path string) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // after a rename, a no-op
	// The mode first: the data is never readable under a wider one.
	err = f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if err := errors.Join(err, f.Close()); err != nil {
		return err
	}
	return move(f.Name(), path)
}
