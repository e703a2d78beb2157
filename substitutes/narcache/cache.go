package narcache

import (
	"container/list"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Errors returned by the cache.
var (
	// ErrNotFound is returned by Get for a key the cache does not hold.
	ErrNotFound = errors.New("not in the NAR cache")
	// ErrBadKey is wrapped by every error about a malformed key.
	ErrBadKey = errors.New("invalid NAR cache key")
	// ErrTooLarge is returned by a Writer whose entry would not fit in the
	// whole cache.
	ErrTooLarge = errors.New("entry larger than the NAR cache limit")
	// ErrClosed is returned by operations on a closed cache.
	ErrClosed = errors.New("NAR cache closed")
	// ErrFinished is returned by a Writer used after Commit or Abort.
	ErrFinished = errors.New("NAR cache writer already committed or aborted")
)

// tmpDir is where Writers put entries being written. Its name starts with a
// dot so that it never matches a key's compression part.
const tmpDir = ".tmp"

// touchEvery is how stale an entry's file time may get before Get refreshes
// it; the in-memory order is exact, the file time only matters after a
// restart, so a coarse one saves a syscall per Get.
const touchEvery = time.Minute

// Options configure a Cache.
type Options struct {
	// MaxBytes is the limit on the total size of the entries. It must be
	// positive.
	MaxBytes int64
	// Logger receives evictions and files skipped at Open; nil discards.
	Logger *slog.Logger
	// Now is the clock used for access times; nil means time.Now.
	Now func() time.Time
}

// Cache is an on-disk NAR cache with LRU eviction. It is safe for concurrent
// use by several goroutines, but not by several processes at once.
type Cache struct {
	dir    string
	limit  int64
	logger *slog.Logger
	now    func() time.Time

	mu      sync.Mutex
	closed  bool
	size    int64
	entries map[string]*list.Element // of *entry
	lru     *list.List               // front: most recently used
}

// entry is one cached file.
type entry struct {
	key     string
	size    int64
	touched time.Time // last access time written to the file
}

// Open opens the cache in dir, creating dir if needed. It removes temporary
// files left by an interrupted Writer, indexes the entries already there in
// order of their file times, and evicts down to opts.MaxBytes.
func Open(dir string, opts Options) (*Cache, error) {
	if opts.MaxBytes <= 0 {
		return nil, fmt.Errorf("open NAR cache %s: size limit %d must be positive", dir, opts.MaxBytes)
	}
	c := &Cache{
		dir:     dir,
		limit:   opts.MaxBytes,
		logger:  opts.Logger,
		now:     opts.Now,
		entries: make(map[string]*list.Element),
		lru:     list.New(),
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	if err := c.resetTmp(); err != nil {
		return nil, fmt.Errorf("open NAR cache: %w", err)
	}
	if err := c.load(); err != nil {
		return nil, fmt.Errorf("open NAR cache: %w", err)
	}
	c.mu.Lock()
	c.evictLocked("")
	c.mu.Unlock()
	return c, nil
}

// resetTmp empties (or creates) the temporary directory.
func (c *Cache) resetTmp() error {
	tmp := filepath.Join(c.dir, tmpDir)
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("remove stale temporary files: %w", err)
	}
	return os.MkdirAll(tmp, 0o755)
}

// load indexes the files already in the cache directory, oldest first.
func (c *Cache) load() error {
	var found []*entry
	err := filepath.WalkDir(c.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(c.dir, path)
		if d.IsDir() {
			if rel != "." && (filepath.Dir(rel) != "." || validCompression(rel) != nil) {
				return filepath.SkipDir // .tmp and anything not ours
			}
			return nil
		}
		e, ok := c.entryFor(filepath.ToSlash(rel), d)
		if ok {
			found = append(found, e)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("index %s: %w", c.dir, err)
	}
	sort.SliceStable(found, func(i, j int) bool { return found[i].touched.Before(found[j].touched) })
	for _, e := range found {
		c.entries[e.key] = c.lru.PushFront(e)
		c.size += e.size
	}
	return nil
}

// entryFor makes the index entry of file rel, or reports false (and logs) for
// a file that is not a cache entry.
func (c *Cache) entryFor(rel string, d fs.DirEntry) (*entry, bool) {
	if err := ValidKey(rel); err != nil || !d.Type().IsRegular() {
		c.logger.Warn("NAR cache: ignoring foreign file", "file", rel)
		return nil, false
	}
	info, err := d.Info()
	if err != nil {
		return nil, false // removed while we walked
	}
	return &entry{key: rel, size: info.Size(), touched: info.ModTime()}, true
}

// path is the file of key.
func (c *Cache) path(key string) string {
	return filepath.Join(c.dir, filepath.FromSlash(key))
}

// Get opens the entry of key for reading and returns it with its size. The
// reader stays valid even if the entry is evicted or replaced meanwhile.
func (c *Cache) Get(key string) (io.ReadCloser, int64, error) {
	if err := ValidKey(key); err != nil {
		return nil, 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, 0, ErrClosed
	}
	el, ok := c.entries[key]
	if !ok {
		return nil, 0, fmt.Errorf("%s: %w", key, ErrNotFound)
	}
	e := el.Value.(*entry)
	f, err := openEntry(c.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		c.dropLocked(el) // deleted behind our back
		return nil, 0, fmt.Errorf("%s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("open cached NAR: %w", err)
	}
	c.lru.MoveToFront(el)
	c.touchLocked(e)
	return f, e.size, nil
}

// openEntry opens a cache file for reading. os.Open would make the
// descriptor non-blocking and offer it to the network poller, which refuses
// regular files: system calls of no use on every hit, costing more than the
// open itself when a server sends small NARs. A blocking descriptor wrapped
// by os.NewFile skips them; reads and sendfile work the same.
func openEntry(path string) (*os.File, error) {
	for {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: path, Err: err}
		}
		return os.NewFile(uintptr(fd), path), nil
	}
}

// touchLocked records a use of e in its file time, at most every touchEvery.
func (c *Cache) touchLocked(e *entry) {
	now := c.now()
	if now.Sub(e.touched) < touchEvery {
		return
	}
	if err := os.Chtimes(c.path(e.key), now, now); err != nil {
		c.logger.Warn("NAR cache: cannot record access time", "key", e.key, "err", err)
		return
	}
	e.touched = now
}

// Contains reports whether the cache holds key, without counting it as a use.
func (c *Cache) Contains(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.entries[key]
	return ok
}

// Remove deletes the entry of key if there is one.
func (c *Cache) Remove(key string) error {
	if err := ValidKey(key); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	if el, ok := c.entries[key]; ok {
		return c.unlinkLocked(el)
	}
	return nil
}

// Size is the total size of the entries, in bytes.
func (c *Cache) Size() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}

// Len is the number of entries.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// Keys returns the keys held, most recently used first.
func (c *Cache) Keys() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := make([]string, 0, c.lru.Len())
	for el := c.lru.Front(); el != nil; el = el.Next() {
		keys = append(keys, el.Value.(*entry).key)
	}
	return keys
}

// Close stops the cache; later calls fail with ErrClosed. The files stay for
// the next Open. Close is idempotent.
func (c *Cache) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

// insertLocked records the file just renamed into place for key, replacing
// any older entry, and evicts others to make room.
func (c *Cache) insertLocked(key string, size int64, at time.Time) {
	if el, ok := c.entries[key]; ok {
		c.dropLocked(el)
	}
	c.entries[key] = c.lru.PushFront(&entry{key: key, size: size, touched: at})
	c.size += size
	c.evictLocked(key)
}

// evictLocked unlinks least recently used entries other than keep until the
// cache fits its limit.
func (c *Cache) evictLocked(keep string) {
	for el := c.lru.Back(); el != nil && c.size > c.limit; {
		prev := el.Prev()
		e := el.Value.(*entry)
		if e.key != keep {
			if err := c.unlinkLocked(el); err != nil {
				c.logger.Warn("NAR cache: cannot evict", "key", e.key, "err", err)
			} else {
				c.logger.Debug("NAR cache: evicted", "key", e.key, "bytes", e.size)
			}
		}
		el = prev
	}
}

// unlinkLocked removes el's file and forgets it. A file already gone is
// forgotten too.
func (c *Cache) unlinkLocked(el *list.Element) error {
	e := el.Value.(*entry)
	err := os.Remove(c.path(e.key))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove cached NAR: %w", err)
	}
	c.dropLocked(el)
	return nil
}

// dropLocked forgets el without touching its file.
func (c *Cache) dropLocked(el *list.Element) {
	e := el.Value.(*entry)
	c.lru.Remove(el)
	delete(c.entries, e.key)
	c.size -= e.size
}
