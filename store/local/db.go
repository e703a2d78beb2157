package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/tbfg/tbfg-node/store"
)

// bucketPaths maps the hash part of each valid item to its record as JSON.
var bucketPaths = []byte("paths")

// record is how an Info is stored: JSON with the NarHash in the text form
// narinfos use, so that the database reads well with any bbolt tool.
type record struct {
	Path       store.Path   `json:"path"`
	NarHash    string       `json:"narHash"`
	NarSize    int64        `json:"narSize"`
	References []store.Path `json:"references"`
	Deriver    store.Path   `json:"deriver,omitempty"`
	Registered time.Time    `json:"registered"`
	CA         string       `json:"ca,omitempty"`
}

// openDB opens the bbolt database at path, failing fast when another process
// holds it.
func openDB(path string) (*bolt.DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("open store database: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open store database %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketRemoving); err != nil {
			return err
		}
		_, err := tx.CreateBucketIfNotExists(bucketPaths)
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open store database %s: %w", path, err)
	}
	return db, nil
}

// getInfo reads the record for hash in tx, or returns ErrNotValid.
func getInfo(tx *bolt.Tx, hash string) (*Info, error) {
	b := tx.Bucket(bucketPaths)
	if b == nil {
		return nil, ErrClosed
	}
	v := b.Get([]byte(hash))
	if v == nil {
		return nil, fmt.Errorf("hash %s: %w", hash, ErrNotValid)
	}
	return decodeInfo([]byte(hash), v)
}

func decodeInfo(k, v []byte) (*Info, error) {
	var r record
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("store database record %s: %w", k, err)
	}
	sum, err := ParseSum(r.NarHash, r.NarSize)
	if err != nil {
		return nil, fmt.Errorf("store database record %s: %w", k, err)
	}
	return &Info{Path: r.Path, Nar: sum, References: r.References,
		Deriver: r.Deriver, Registered: r.Registered, CA: r.CA}, nil
}

// putInfo records info in tx.
func putInfo(tx *bolt.Tx, info *Info) error {
	v, err := json.Marshal(record{Path: info.Path, NarHash: info.NarHash(), NarSize: info.Nar.Size,
		References: info.References, Deriver: info.Deriver, Registered: info.Registered, CA: info.CA})
	if err != nil {
		return err
	}
	return tx.Bucket(bucketPaths).Put([]byte(info.Path.HashPart()), v)
}

// dbErr reports a closed database as ErrClosed.
func dbErr(err error) error {
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}
