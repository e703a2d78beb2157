package local

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tbfg/tbfg-node/store"
)

// bucketRemoving lists the items being removed, by hash part, with their
// base name: their record is gone, their files may not be yet. Open
// finishes what a crash interrupted.
var bucketRemoving = []byte("removing")

// trashPrefix starts the name an item's directory is renamed to once its
// record is gone, before it is deleted: a reader or a new add of the same
// path never sees a half-deleted tree under the item's name.
const trashPrefix = ".gc-"

// Remove deletes the valid items paths from the store, and returns the sum
// of their NAR sizes. Each item goes in three steps, each of which leaves
// the store consistent if the process dies after it: its record is removed
// and the removal noted in one transaction (from then on it is not valid),
// its directory is renamed to a trash name, and the trash is deleted and the
// note dropped; Open finishes any removal left noted. It fails, removing
// nothing, if a valid item outside paths refers to one of them (a store
// keeps the closure of every item), or if one of them is not valid.
func (s *Store) Remove(ctx context.Context, paths ...store.Path) (int64, error) {
	if len(paths) == 0 {
		return 0, nil
	}
	unlock, err := s.Lock(ctx, paths...)
	if err != nil {
		return 0, err
	}
	defer unlock()
	infos, err := s.checkRemovable(paths)
	if err != nil {
		return 0, err
	}
	var freed int64
	for _, info := range infos {
		if err := s.remove(info); err != nil {
			return freed, err
		}
		freed += info.Nar.Size
	}
	return freed, nil
}

// checkRemovable returns the records of paths, failing if one is not valid
// or if a valid item outside paths refers to one of them.
func (s *Store) checkRemovable(paths []store.Path) ([]*Info, error) {
	gone := make(map[store.Path]bool, len(paths))
	infos := make([]*Info, 0, len(paths))
	for _, p := range paths {
		info, err := s.Query(p)
		if err != nil {
			return nil, fmt.Errorf("remove: %w", err)
		}
		if !gone[p] {
			infos = append(infos, info)
		}
		gone[p] = true
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPaths).ForEach(func(k, v []byte) error {
			info, err := decodeInfo(k, v)
			if err != nil || gone[info.Path] {
				return err
			}
			for _, r := range info.References {
				if gone[r] {
					return fmt.Errorf("remove %s: %w by %s", r, ErrReferenced, info.Path)
				}
			}
			return nil
		})
	})
	return infos, dbErr(err)
}

// remove deletes one item whose lock the caller holds.
func (s *Store) remove(info *Info) error {
	hash, base := []byte(info.Path.HashPart()), []byte(info.Path.Base())
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketPaths).Delete(hash); err != nil {
			return err
		}
		return tx.Bucket(bucketRemoving).Put(hash, base)
	})
	if err != nil {
		return fmt.Errorf("remove %s: %w", info.Path, dbErr(err))
	}
	s.forget(info.Path)
	if err := s.deleteFiles(info.Path.Base()); err != nil {
		return fmt.Errorf("remove %s: %w", info.Path, err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketRemoving).Delete(hash) })
	if err != nil {
		return fmt.Errorf("remove %s: %w", info.Path, dbErr(err))
	}
	return nil
}

// deleteFiles renames the directory of the item named base to its trash
// name and deletes it.
func (s *Store) deleteFiles(base string) error {
	real, trash := filepath.Join(s.real, base), filepath.Join(s.real, trashPrefix+base)
	if err := os.Rename(real, trash); err != nil && !errNotExist(err) {
		return err
	}
	return removeTree(trash)
}

// finishRemovals deletes the files of the items whose removal a crash
// interrupted, and any trash left, then drops the notes. It runs at Open,
// when no other process uses the store.
func finishRemovals(db *bolt.DB, real string) error {
	var bases []string
	err := db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRemoving).ForEach(func(_, v []byte) error {
			bases = append(bases, string(v))
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("open store: finish removals: %w", err)
	}
	s := &Store{real: real}
	for _, base := range bases {
		if filepath.Base(base) != base || base == "." || base == ".." {
			continue // not a name this package wrote
		}
		if err := s.deleteFiles(base); err != nil {
			return fmt.Errorf("open store: finish removal of %s: %w", base, err)
		}
	}
	trash, err := filepath.Glob(filepath.Join(real, trashPrefix+"*"))
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	for _, t := range trash {
		if err := removeTree(t); err != nil {
			return fmt.Errorf("open store: remove trash: %w", err)
		}
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketRemoving); err != nil {
			return err
		}
		_, err := tx.CreateBucket(bucketRemoving)
		return err
	})
	if err != nil {
		return fmt.Errorf("open store: finish removals: %w", err)
	}
	return nil
}

// Usage is a valid item's size, references and when it was last used.
type Usage struct {
	// Path is the item.
	Path store.Path
	// Size is its NAR size, which is at least the size of its files.
	Size int64
	// References are the paths it refers to, itself included if it does.
	References []store.Path
	// LastUsed is the latest of its registration (built or fetched) and
	// the last time the store served its NAR (Dump) or was told of a use
	// (Touch) since Open.
	LastUsed time.Time
}

// Usage lists every valid item with its size and last use, sorted by path.
func (s *Store) Usage() ([]Usage, error) {
	var out []Usage
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPaths).ForEach(func(k, v []byte) error {
			info, err := decodeInfo(k, v)
			if err != nil {
				return err
			}
			out = append(out, Usage{Path: info.Path, Size: info.Nar.Size,
				References: info.References, LastUsed: info.Registered})
			return nil
		})
	})
	if err != nil {
		return nil, dbErr(err)
	}
	s.mu.Lock()
	for i := range out {
		if t, ok := s.used[out[i].Path]; ok && t.After(out[i].LastUsed) {
			out[i].LastUsed = t
		}
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b Usage) int { return cmp.Compare(a.Path, b.Path) })
	return out, nil
}

// Touch records that p was used now (e.g. read by a build), for Usage.
// Uses are kept in memory only: after a restart an item's last use is its
// registration time until it is used again.
func (s *Store) Touch(p store.Path) {
	now := s.now().UTC()
	s.mu.Lock()
	s.used[p] = now
	s.mu.Unlock()
}

// forget drops p's recorded use.
func (s *Store) forget(p store.Path) {
	s.mu.Lock()
	delete(s.used, p)
	s.mu.Unlock()
}
