package derivation

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/tbfg/tbfg-node/store"
)

// DirLoader is a Loader that reads .drv files from Root, a directory holding
// items of the store directory Dir by their base names: a store itself, the
// real directory of a chroot store, or a copy of some of a store's .drv files.
type DirLoader struct {
	// Root is the directory on this machine that holds the .drv files.
	Root string
	// Dir is the logical store directory their paths belong to.
	Dir store.Dir
}

// Load reads and parses the .drv file of p from l.Root.
func (l DirLoader) Load(p store.Path) (*Derivation, error) {
	if p.Dir() != l.Dir {
		return nil, fmt.Errorf("%w %q: not in store directory %s", store.ErrBadPath, p, l.Dir)
	}
	// Join validates the base name, so the file read is always directly in Root.
	if _, err := l.Dir.Join(p.Base()); err != nil {
		return nil, err
	}
	data, err := ReadFile(filepath.Join(l.Root, p.Base()))
	if err != nil {
		return nil, err
	}
	d, err := Parse(data, l.Dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return d, nil
}

// ReadFile reads a .drv file, refusing files over MaxSize.
func ReadFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%s: %w: over %d bytes", name, ErrTooLarge, MaxSize)
	}
	return data, nil
}
