package buildlog

import (
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/tbfg/tbfg-node/store"
)

// File name suffixes of the two forms of a log, and of a finished log
// being written.
const (
	liveSuffix = ".log"
	doneSuffix = ".gz"
	tmpSuffix  = ".gz.tmp"
)

// Errors of this package, wrapped with the log concerned.
var (
	// ErrNotFound means the directory has no log of that derivation.
	ErrNotFound = errors.New("no build log")
	// ErrBusy means a log of that derivation is being written already.
	ErrBusy = errors.New("build log being written")
)

// Dir is a directory of build logs. Its methods are safe for concurrent
// use.
type Dir struct {
	path string

	mu   sync.Mutex
	live map[string]*live // by derivation base name
}

// Open opens the log directory at path, creating it if needed, and
// compresses the live logs an earlier process left unfinished.
func Open(path string) (*Dir, error) {
	if err := os.MkdirAll(path, 0o755); err != nil {
		return nil, fmt.Errorf("log directory: %w", err)
	}
	d := &Dir{path: path, live: map[string]*live{}}
	if err := d.finishStale(); err != nil {
		return nil, fmt.Errorf("log directory %s: %w", path, err)
	}
	return d, nil
}

// Path is the directory's path.
func (d *Dir) Path() string { return d.path }

// DoneName is the file name of the finished log of the derivation whose
// base name is drvBase.
func DoneName(drvBase string) string { return drvBase + doneSuffix }

func (d *Dir) file(drvBase, suffix string) string { return filepath.Join(d.path, drvBase+suffix) }

// finishStale compresses every live file no writer of this process owns
// (a new Dir has none), and removes temporary files.
func (d *Dir) finishStale() error {
	entries, err := os.ReadDir(d.path)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, tmpSuffix):
			errs = append(errs, os.Remove(filepath.Join(d.path, name)))
		case strings.HasSuffix(name, liveSuffix) && validBase(strings.TrimSuffix(name, liveSuffix)) == nil:
			errs = append(errs, d.finish(strings.TrimSuffix(name, liveSuffix)))
		}
	}
	return errors.Join(errs...)
}

// finish compresses the live file of drvBase into its .gz and removes it.
func (d *Dir) finish(drvBase string) error {
	livePath := d.file(drvBase, liveSuffix)
	if err := compress(livePath, d.file(drvBase, tmpSuffix), d.file(drvBase, doneSuffix)); err != nil {
		return fmt.Errorf("finish log of %s: %w", drvBase, err)
	}
	return os.Remove(livePath)
}

// compress writes src gzipped to tmp, then renames tmp to dest.
func compress(src, tmp, dest string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	zw := gzip.NewWriter(out)
	_, err = io.Copy(zw, in)
	if err = errors.Join(err, zw.Close(), out.Close()); err != nil {
		return err
	}
	return os.Rename(tmp, dest)
}

func validBase(drvBase string) error {
	if err := store.ValidateBase(drvBase); err != nil {
		return fmt.Errorf("build log name %q: %w", drvBase, err)
	}
	return nil
}

// Create starts the live log of the derivation drvBase. The log replaces
// an earlier one of the same derivation when the Writer closes; until
// then, readers get the live one.
func (d *Dir) Create(drvBase string) (*Writer, error) {
	if err := validBase(drvBase); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.live[drvBase] != nil {
		return nil, fmt.Errorf("log of %s: %w", drvBase, ErrBusy)
	}
	f, err := os.Create(d.file(drvBase, liveSuffix))
	if err != nil {
		return nil, fmt.Errorf("create build log: %w", err)
	}
	os.Remove(d.file(drvBase, removedSuffix)) // a new log: no longer removed

	l := newLive()
	d.live[drvBase] = l
	return &Writer{d: d, base: drvBase, f: f, l: l}, nil
}

// Open opens the log of the derivation drvBase from byte offset; a negative
// offset counts from the end of what is written so far, and an offset past
// the end reads from the end. It returns the offset of the first byte the
// reader reads. With follow, the reader of a live log waits for more until
// the writer closes, and returns ctx's error once ctx ends; without, it
// ends at what is written now. A directory without that log is ErrNotFound.
func (d *Dir) Open(ctx context.Context, drvBase string, offset int64, follow bool) (io.ReadCloser, int64, error) {
	if err := validBase(drvBase); err != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	if rc, start, ok, err := d.openLive(ctx, drvBase, offset, follow); ok {
		return rc, start, err
	}
	return d.openDone(drvBase, offset)
}

// openLive opens the live log of drvBase if there is one (ok).
func (d *Dir) openLive(ctx context.Context, drvBase string, offset int64, follow bool) (io.ReadCloser, int64, bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	l := d.live[drvBase]
	if l == nil {
		return nil, 0, false, nil
	}
	// Under d.mu, so the writer cannot remove the file in between; once
	// open, the descriptor reads it even after its removal.
	f, err := os.Open(d.file(drvBase, liveSuffix))
	if err != nil {
		return nil, 0, true, fmt.Errorf("log of %s: %w", drvBase, err)
	}
	size, _ := l.state()
	start := clampOffset(offset, size)
	return &liveReader{ctx: ctx, f: f, l: l, off: start, follow: follow}, start, true, nil
}

// openDone opens the finished log of drvBase.
func (d *Dir) openDone(drvBase string, offset int64) (io.ReadCloser, int64, error) {
	f, err := os.Open(d.file(drvBase, doneSuffix))
	if errors.Is(err, fs.ErrNotExist) {
		if rerr := d.Removed(drvBase); rerr != nil {
			return nil, 0, rerr
		}
		return nil, 0, fmt.Errorf("log of %s: %w", drvBase, ErrNotFound)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("log of %s: %w", drvBase, err)
	}
	rc, start, err := openGzip(f, offset)
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("log of %s: %w", drvBase, err)
	}
	return rc, start, nil
}

// clampOffset resolves a negative offset against size and bounds it to
// [0, size].
func clampOffset(offset, size int64) int64 {
	if offset < 0 {
		offset += size
	}
	return min(max(offset, 0), size)
}

// openGzip reads the gzip file f from offset of its content. The content's
// size comes from the gzip trailer, which holds it modulo 4 GiB: logs are
// far smaller.
func openGzip(f *os.File, offset int64) (io.ReadCloser, int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	var size int64
	if fi.Size() >= 4 {
		var trailer [4]byte
		if _, err := f.ReadAt(trailer[:], fi.Size()-4); err != nil {
			return nil, 0, err
		}
		size = int64(binary.LittleEndian.Uint32(trailer[:]))
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, 0, err
	}
	start := clampOffset(offset, size)
	if _, err := io.CopyN(io.Discard, zr, start); err != nil && !errors.Is(err, io.EOF) {
		return nil, 0, err
	}
	return &gzipFile{Reader: zr, f: f}, start, nil
}

type gzipFile struct {
	*gzip.Reader
	f *os.File
}

func (g *gzipFile) Close() error { return errors.Join(g.Reader.Close(), g.f.Close()) }
