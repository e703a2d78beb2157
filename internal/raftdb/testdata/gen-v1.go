//go:build ignore

// gen-v1 writes testdata/datadir-v1: the data dir of a single-node mesh as the
// node's first Raft store (internal/raftstore: bbolt, its own entry encoding)
// left it, for the tests that a node upgrading to raft-boltdb/v2 keeps its
// log, term and vote.
//
// It writes identity.key (a fixed Ed25519 key, as the mesh writes it) and
// raft/raft.db holding a three-entry log (the configuration naming this node
// as the only voter, then two commands), CurrentTerm 3, a vote for itself in
// term 3 and the cluster ID, the way Raft and the mesh call the store.
// Run from the repository root, at a commit that still has internal/raftstore:
//
//	go run ./internal/raftdb/testdata/gen-v1.go
package main

import (
	"crypto/ed25519"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/tbfg/tbfg-node/internal/raftstore"
)

const dir = "internal/raftdb/testdata/datadir-v1"

func main() {
	if err := os.RemoveAll(dir); err != nil {
		log.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "raft"), 0o700); err != nil {
		log.Fatal(err)
	}
	id, err := writeIdentity(filepath.Join(dir, "identity.key"))
	if err != nil {
		log.Fatal(err)
	}
	if err := writeStore(filepath.Join(dir, "raft", "raft.db"), id); err != nil {
		log.Fatal(err)
	}
	fmt.Println("wrote", dir, "for node", id)
}

// writeIdentity writes the libp2p key of seed 0x42... and returns its peer ID.
func writeIdentity(path string) (peer.ID, error) {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = 0x42
	}
	k, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		return "", err
	}
	data, err := crypto.MarshalPrivateKey(k)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return "", err
	}
	return peer.IDFromPrivateKey(k)
}

func writeStore(path string, id peer.ID) error {
	s, err := raftstore.Open(path)
	if err != nil {
		return err
	}
	defer s.Close()
	self := raft.ServerID(id.String())
	conf := raft.EncodeConfiguration(raft.Configuration{Servers: []raft.Server{
		{Suffrage: raft.Voter, ID: self, Address: raft.ServerAddress(self)},
	}})
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	logs := []*raft.Log{
		{Index: 1, Term: 1, Type: raft.LogConfiguration, Data: conf, AppendedAt: at},
		{Index: 2, Term: 2, Type: raft.LogCommand, Data: []byte("golden-1"), AppendedAt: at.Add(time.Second)},
		{Index: 3, Term: 3, Type: raft.LogCommand, Data: []byte("golden-2"), Extensions: []byte("ext"),
			AppendedAt: at.Add(2 * time.Second)},
	}
	if err := s.StoreLogs(logs); err != nil {
		return err
	}
	for _, k := range []string{"CurrentTerm", "LastVoteTerm"} {
		if err := s.SetUint64([]byte(k), 3); err != nil {
			return err
		}
	}
	if err := s.Set([]byte("LastVoteCand"), []byte(self)); err != nil {
		return err
	}
	return s.Set([]byte("tbfg_cluster_id"), []byte("golden-cluster"))
}
