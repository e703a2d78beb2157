package raftdb

import (
	"fmt"
	"log/slog"
	"time"

	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	bolt "go.etcd.io/bbolt"
)

// lockTimeout bounds the wait for the file's lock: while another process
// (a second node on the same data dir) holds it, Open fails instead of
// hanging.
const lockTimeout = 5 * time.Second

// Open opens the store at path, creating it (0600) if missing, after
// upgrading it if the node's first store wrote it. log reports an upgrade.
func Open(path string, log *slog.Logger) (*raftboltdb.BoltStore, error) {
	if err := upgrade(path, log); err != nil {
		return nil, fmt.Errorf("upgrade raft store %s: %w", path, err)
	}
	s, err := raftboltdb.New(raftboltdb.Options{
		Path:        path,
		BoltOptions: &bolt.Options{Timeout: lockTimeout},
	})
	if err != nil {
		return nil, fmt.Errorf("open raft store %s: %w", path, err)
	}
	return s, nil
}
