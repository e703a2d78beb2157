package raftdb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	bolt "go.etcd.io/bbolt"
)

// The buckets both stores use.
var (
	logsBucket = []byte("logs")
	confBucket = []byte("conf")
)

// Files beside the store while it is upgraded.
const (
	// upgradingSuffix names the new file while it is written.
	upgradingSuffix = ".upgrading"
	// backupSuffix names a second link to the old file, kept until the
	// new file has replaced it and the directory is synced.
	backupSuffix = ".v1"
)

// batchSize is how many entries go into one write of the new file.
const batchSize = 1024

// upgrade rewrites path in raft-boltdb/v2's encoding if the first store
// wrote it. The new file replaces path by a rename, so path always holds a
// whole store, old or new, whenever the upgrade stops; what an interrupted
// upgrade leaves beside it is removed here, and an old file is upgraded
// again.
func upgrade(path string, log *slog.Logger) error {
	if err := removeIfExists(path + upgradingSuffix); err != nil {
		return err
	}
	// A file that was being created when the node stopped may be empty:
	// it has nothing to upgrade, and bbolt initialises it when opening it
	// for writing, where a read-only open fails.
	if fi, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) || err == nil && fi.Size() == 0 {
		return nil
	}
	// The old file stays open, and so locked against a writer, until the
	// new one has replaced it.
	from, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: lockTimeout})
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer from.Close()
	if !isV1(from) {
		return removeIfExists(path + backupSuffix)
	}
	n, err := rewrite(from, path+upgradingSuffix)
	if err != nil {
		return errors.Join(err, removeIfExists(path+upgradingSuffix))
	}
	if err := swap(path); err != nil {
		return err
	}
	log.Info("upgraded raft store to raft-boltdb/v2", "path", path, "entries", n)
	return nil
}

// isV1 reports whether the first store wrote db: its first log entry is in
// that store's encoding. An empty log needs no upgrade, as the stable values
// are stored alike.
func isV1(db *bolt.DB) bool {
	v1 := false
	_ = db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(logsBucket); b != nil {
			_, v := b.Cursor().First()
			v1 = len(v) > 0 && v[0] == v1Version
		}
		return nil
	})
	return v1
}

// rewrite copies the stable values and the log of the old file into a new
// store at dst, synced and closed, and returns the number of entries.
func rewrite(from *bolt.DB, dst string) (int, error) {
	// One sync at the end instead of one per batch.
	to, err := raftboltdb.New(raftboltdb.Options{Path: dst, NoSync: true})
	if err != nil {
		return 0, fmt.Errorf("create %s: %w", dst, err)
	}
	var n int
	err = from.View(func(tx *bolt.Tx) error {
		if err := copyStable(tx, to); err != nil {
			return err
		}
		n, err = copyLog(tx, to)
		return err
	})
	if err == nil {
		if err = to.Sync(); err != nil {
			err = fmt.Errorf("sync %s: %w", dst, err)
		}
	}
	return n, errors.Join(err, to.Close())
}

func copyStable(tx *bolt.Tx, to *raftboltdb.BoltStore) error {
	b := tx.Bucket(confBucket)
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, v []byte) error {
		if err := to.Set(k, v); err != nil {
			return fmt.Errorf("copy stable value %q: %w", k, err)
		}
		return nil
	})
}

// copyLog decodes every entry of the old log and stores it in to.
func copyLog(tx *bolt.Tx, to *raftboltdb.BoltStore) (int, error) {
	n := 0
	batch := make([]*raft.Log, 0, batchSize)
	flush := func() error {
		if err := to.StoreLogs(batch); err != nil {
			return fmt.Errorf("store entries %d-%d: %w", batch[0].Index, batch[len(batch)-1].Index, err)
		}
		n += len(batch)
		batch = batch[:0]
		return nil
	}
	c := tx.Bucket(logsBucket).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		l := new(raft.Log)
		if len(k) != 8 {
			return n, fmt.Errorf("log key %x: not an 8-byte index", k)
		}
		if err := decodeV1(v, l); err != nil {
			return n, fmt.Errorf("log entry %d: %w", binary.BigEndian.Uint64(k), err)
		}
		if i := binary.BigEndian.Uint64(k); l.Index != i {
			return n, fmt.Errorf("log entry %d: holds index %d", i, l.Index)
		}
		if batch = append(batch, l); len(batch) == batchSize {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if len(batch) == 0 {
		return n, nil
	}
	return n, flush()
}

// swap puts the synced new file in place of the old one: the old file keeps
// a second name until the rename is on disk.
func swap(path string) error {
	backup := path + backupSuffix
	if err := removeIfExists(backup); err != nil {
		return err
	}
	if err := os.Link(path, backup); err != nil {
		return fmt.Errorf("keep old file: %w", err)
	}
	if err := os.Rename(path+upgradingSuffix, path); err != nil {
		return fmt.Errorf("replace old file: %w", err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return err
	}
	// Should this removal not reach the disk, the next Open removes the
	// backup again: path is no longer an old file then.
	return removeIfExists(backup)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}
