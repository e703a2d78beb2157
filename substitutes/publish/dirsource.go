package publish

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/tbfg/tbfg-node/internal/pipe"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/nar"
	"github.com/tbfg/tbfg-node/substitutes/narinfo"
)

// DirSource is a Source backed by directories: store items in the real
// directory of a store (whatever store manages it), narinfos as files
// <hash>.narinfo, and build logs as files <base> or <base>.gz. NARs are
// archived from the items on every OpenNAR. Names are validated before they
// are joined to a directory.
type DirSource struct {
	// StoreDir is the logical store directory of the items.
	StoreDir store.Dir
	// RealDir is the directory that holds the items of StoreDir.
	RealDir string
	// NarinfoDir holds the signed narinfos.
	NarinfoDir string
	// LogDir holds the build logs; "" means none.
	LogDir string
}

// Narinfo implements Source.
func (d *DirSource) Narinfo(_ context.Context, hashPart string) (*narinfo.Narinfo, error) {
	if err := validHashPart(hashPart); err != nil {
		return nil, err
	}
	data, err := readBounded(filepath.Join(d.NarinfoDir, hashPart+".narinfo"), narinfo.MaxSize)
	if err != nil {
		return nil, fmt.Errorf("narinfo %s: %w", hashPart, err)
	}
	ni, err := narinfo.Parse(data, d.StoreDir)
	if err != nil {
		return nil, fmt.Errorf("narinfo %s: %w", hashPart, err)
	}
	return ni, nil
}

// OpenNAR implements Source. The archive is written by a goroutine that
// Close stops and waits for.
func (d *DirSource) OpenNAR(_ context.Context, p store.Path) (io.ReadCloser, error) {
	if p.Dir() != d.StoreDir {
		return nil, fmt.Errorf("NAR of %s: not in %s: %w", p, d.StoreDir, ErrNotFound)
	}
	if err := store.ValidateBase(p.Base()); err != nil {
		return nil, fmt.Errorf("NAR of %s: %w", p, err)
	}
	real := filepath.Join(d.RealDir, p.Base())
	if _, err := os.Lstat(real); err != nil {
		return nil, fmt.Errorf("NAR of %s: %w", p, notFound(err))
	}
	return pipe.From(func(w io.Writer) error { return nar.Dump(w, real) }), nil
}

// Log implements Source: the file <base> as it is, or <base>.gz
// decompressed.
func (d *DirSource) Log(_ context.Context, base string) (io.ReadCloser, error) {
	if err := store.ValidateBase(base); err != nil {
		return nil, fmt.Errorf("log of %s: %w", base, err)
	}
	if d.LogDir == "" {
		return nil, fmt.Errorf("log of %s: %w", base, ErrNotFound)
	}
	name := filepath.Join(d.LogDir, base)
	if f, err := os.Open(name); err == nil {
		return f, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("log of %s: %w", base, err)
	}
	f, err := os.Open(name + ".gz")
	if err != nil {
		return nil, fmt.Errorf("log of %s: %w", base, notFound(err))
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("log of %s: %w", base, err)
	}
	return &gzipFile{Reader: zr, f: f}, nil
}

// gzipFile reads a gzip file decompressed.
type gzipFile struct {
	*gzip.Reader
	f *os.File
}

// Close closes the file.
func (g *gzipFile) Close() error { return g.f.Close() }

// notFound wraps ErrNotFound around a missing file's error.
func notFound(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}

// readBounded reads a whole regular file of at most limit bytes.
func readBounded(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, notFound(err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, limit)
	}
	return data, nil
}
