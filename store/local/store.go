package local

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/nar"
)

// Errors wrapped by the store.
var (
	// ErrNotValid is returned for a path that is not a valid item of the store.
	ErrNotValid = errors.New("path is not valid in the store")
	// ErrHashMismatch is returned when an archive's NarHash or NarSize is not
	// the expected one.
	ErrHashMismatch = errors.New("NAR hash mismatch")
	// ErrMissingReference is returned when an item to be registered refers to
	// a path that is not valid in the store.
	ErrMissingReference = errors.New("reference is not valid in the store")
	// ErrLocked is returned when the database is held by another process.
	ErrLocked = errors.New("store database is locked by another process")
	// ErrClosed is returned by a Store after Close.
	ErrClosed = errors.New("store is closed")
	// ErrBadNarHash is returned by ParseSum for a NarHash it cannot read.
	ErrBadNarHash = errors.New("invalid NarHash")
	// ErrReferenced is returned by Remove for an item that a valid item
	// which stays refers to.
	ErrReferenced = errors.New("item is referenced")
)

// Info is what the store records about a valid item.
type Info struct {
	// Path is the item's store path.
	Path store.Path
	// Nar is the SHA-256 and size of the item's NAR serialisation.
	Nar nar.Sum
	// References are the store paths the item refers to, sorted; they may
	// include Path itself.
	References []store.Path
	// Deriver is the .drv path that built the item, or empty.
	Deriver store.Path
	// Registered is when the item became valid.
	Registered time.Time
	// CA is the content address of a fixed-output or text item, in Nix's
	// notation (e.g. "fixed:r:sha256:<base32>", "text:sha256:<base32>"), or
	// empty for an input-addressed item.
	CA string
}

// NarHash is the item's NarHash as narinfos print it: "sha256:<nix-base32>".
func (i *Info) NarHash() string { return i.Nar.NarHash() }

// Store is a built-in store: items under a real directory, records in a
// database. It is safe for concurrent use; one process at a time may open it.
type Store struct {
	dir  store.Dir
	real string
	db   *bolt.DB
	now  func() time.Time

	mu     sync.Mutex
	locked map[store.Path]chan struct{} // paths being written; closed on release
	used   map[store.Path]time.Time     // last uses since Open (Touch, Dump)
}

// Option changes how Open sets a Store up.
type Option func(*options)

type options struct {
	dbPath string
	now    func() time.Time
}

// WithDatabase puts the database at path instead of next to the real
// directory (<realDir>.db).
func WithDatabase(path string) Option { return func(o *options) { o.dbPath = path } }

// WithClock sets the clock that stamps registration times.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// Open opens (creating if needed) the store whose logical directory is dir
// and whose items live in realDir. The database is the file <realDir>.db
// unless WithDatabase says otherwise; it must not be inside realDir, which
// builds can see and write.
func Open(realDir string, dir store.Dir, opts ...Option) (*Store, error) {
	if err := dir.Validate(); err != nil {
		return nil, err
	}
	o := options{dbPath: filepath.Clean(realDir) + ".db", now: time.Now}
	for _, f := range opts {
		f(&o)
	}
	real, err := filepath.Abs(realDir)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := os.MkdirAll(real, 0o755); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	db, err := openDB(o.dbPath)
	if err != nil {
		return nil, err
	}
	// The database is open in this process only (bbolt locks its file), so
	// no add is in progress anywhere: staging directories left by a crash
	// are garbage.
	if err := removeStaging(real); err != nil {
		return nil, errors.Join(err, db.Close())
	}
	// Likewise removals a crash interrupted: their records are gone, so
	// their files are garbage too.
	if err := finishRemovals(db, real); err != nil {
		return nil, errors.Join(err, db.Close())
	}
	s := &Store{dir: dir, real: real, db: db, now: o.now, locked: make(map[store.Path]chan struct{}),
		used: make(map[store.Path]time.Time)}
	return s, nil
}

// stagingPrefix starts the name of the directory each add unpacks into
// before the item is renamed into place.
const stagingPrefix = ".add-"

// removeStaging deletes the staging directories in real.
func removeStaging(real string) error {
	leftovers, err := filepath.Glob(filepath.Join(real, stagingPrefix+"*"))
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	for _, d := range leftovers {
		if err := removeTree(d); err != nil {
			return fmt.Errorf("open store: remove staging directory left by a crash: %w", err)
		}
	}
	return nil
}

// Close closes the database. It is idempotent.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store database: %w", err)
	}
	return nil
}

// Dir is the store's logical directory, e.g. /gnu/store.
func (s *Store) Dir() store.Dir { return s.dir }

// RealDir is the directory that holds the store's items on this machine.
func (s *Store) RealDir() string { return s.real }

// RealPath is where the item p lives (or would live) on this machine. It
// fails for a path that is not an item of the store's directory.
func (s *Store) RealPath(p store.Path) (string, error) {
	if _, err := s.dir.ParsePath(string(p)); err != nil {
		return "", err
	}
	return filepath.Join(s.real, p.Base()), nil
}

// IsValid reports whether p is a valid item of the store.
func (s *Store) IsValid(p store.Path) (bool, error) {
	_, err := s.Query(p)
	if errors.Is(err, ErrNotValid) {
		return false, nil
	}
	return err == nil, err
}

// Query returns what the store records about p, or an error wrapping
// ErrNotValid.
func (s *Store) Query(p store.Path) (*Info, error) {
	if _, err := s.dir.ParsePath(string(p)); err != nil {
		return nil, err
	}
	info, err := s.QueryHash(p.HashPart())
	if err != nil && !errors.Is(err, ErrNotValid) {
		return nil, err
	}
	if err != nil || info.Path != p {
		return nil, fmt.Errorf("%s: %w", p, ErrNotValid)
	}
	return info, nil
}

// QueryHash returns the record of the valid item whose hash part is hash, as
// a substitute server looks items up, or an error wrapping ErrNotValid.
func (s *Store) QueryHash(hash string) (*Info, error) {
	var info *Info
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		info, err = getInfo(tx, hash)
		return err
	})
	if err != nil {
		return nil, dbErr(err)
	}
	return info, nil
}

// Valid returns every valid path of the store, sorted.
func (s *Store) Valid() ([]store.Path, error) {
	var out []store.Path
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPaths).ForEach(func(k, v []byte) error {
			info, err := decodeInfo(k, v)
			if err != nil {
				return err
			}
			out = append(out, info.Path)
			return nil
		})
	})
	return out, dbErr(err)
}
