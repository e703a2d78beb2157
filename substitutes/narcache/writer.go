package narcache

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// Writer writes one entry. Nothing is visible to Get until Commit; Abort (or
// a crash) leaves nothing behind. A Writer is for one goroutine. Commit
// publishes the entry, Abort discards it; Abort after Commit is a no-op, so
// `defer w.Abort()` is the usual pattern.
type Writer struct {
	c    *Cache
	key  string
	f    *os.File
	n    int64
	err  error // first write error; Commit returns it
	once sync.Once
	done bool
}

// Create starts writing the entry of key. An existing entry of key stays
// readable until Commit replaces it.
func (c *Cache) Create(key string) (*Writer, error) {
	if err := ValidKey(key); err != nil {
		return nil, err
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	f, err := os.CreateTemp(filepath.Join(c.dir, tmpDir), "put-*")
	if err != nil {
		return nil, fmt.Errorf("create NAR cache entry: %w", err)
	}
	return &Writer{c: c, key: key, f: f}, nil
}

// Write appends p to the entry. It fails with ErrTooLarge once the entry
// exceeds the cache's whole limit.
func (w *Writer) Write(p []byte) (int, error) {
	switch {
	case w.done:
		return 0, ErrFinished
	case w.err != nil:
		return 0, w.err
	case w.n+int64(len(p)) > w.c.limit:
		w.err = fmt.Errorf("%s: %w (%d bytes)", w.key, ErrTooLarge, w.c.limit)
		return 0, w.err
	}
	n, err := w.f.Write(p)
	w.n += int64(n)
	if err != nil {
		w.err = fmt.Errorf("write NAR cache entry: %w", err)
	}
	return n, w.err
}

// Commit makes the entry visible under its key and evicts older entries if
// the cache is now over its limit. The content is synced before the rename,
// so after a crash an entry is whole or absent; the directory is not synced,
// since an entry lost that way is only fetched again.
func (w *Writer) Commit() error {
	if w.done {
		return ErrFinished
	}
	w.done = true
	if err := w.finishFile(); err != nil {
		w.removeTmp()
		return err
	}
	return w.install()
}

// finishFile flushes and closes the temporary file.
func (w *Writer) finishFile() error {
	if w.err != nil {
		_ = w.f.Close()
		return w.err
	}
	// Without Sync a crash after the rename could leave a truncated entry
	// under a valid key.
	if err := w.f.Sync(); err != nil {
		_ = w.f.Close()
		return fmt.Errorf("sync NAR cache entry: %w", err)
	}
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("close NAR cache entry: %w", err)
	}
	return nil
}

// install renames the finished file into place and indexes it.
func (w *Writer) install() error {
	c := w.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		w.removeTmp()
		return ErrClosed
	}
	dst := c.path(w.key)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		w.removeTmp()
		return fmt.Errorf("commit NAR cache entry: %w", err)
	}
	now := c.now()
	if err := os.Chtimes(w.f.Name(), now, now); err != nil {
		w.removeTmp()
		return fmt.Errorf("commit NAR cache entry: %w", err)
	}
	if err := os.Rename(w.f.Name(), dst); err != nil {
		w.removeTmp()
		return fmt.Errorf("commit NAR cache entry: %w", err)
	}
	c.insertLocked(w.key, w.n, now)
	return nil
}

// Abort discards the entry. It is a no-op after Commit or a previous Abort.
func (w *Writer) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	err := w.f.Close()
	w.removeTmp()
	if err != nil && !errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("abort NAR cache entry: %w", err)
	}
	return nil
}

// removeTmp deletes the temporary file, once.
func (w *Writer) removeTmp() {
	w.once.Do(func() { _ = os.Remove(w.f.Name()) })
}
