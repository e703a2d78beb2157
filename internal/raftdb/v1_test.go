package raftdb

import (
	"encoding/binary"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
)

// encodeV1 is the first store's encoding, which decodeV1 reads; the tests
// write old files with it.
func encodeV1(l *raft.Log) []byte {
	b := []byte{v1Version, byte(l.Type)}
	var at uint64
	if !l.AppendedAt.IsZero() {
		at = uint64(l.AppendedAt.UnixNano())
	}
	b = binary.AppendUvarint(b, l.Index)
	b = binary.AppendUvarint(b, l.Term)
	b = binary.AppendUvarint(b, at)
	b = binary.AppendUvarint(b, uint64(len(l.Data)))
	b = append(b, l.Data...)
	b = binary.AppendUvarint(b, uint64(len(l.Extensions)))
	return append(b, l.Extensions...)
}

// writeV1 writes a file in the first store's layout: raw values, so that a
// test may also store an entry that is not valid.
func writeV1(t testing.TB, path string, entries map[uint64][]byte, stable map[string][]byte) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		logs, err := tx.CreateBucketIfNotExists(logsBucket)
		if err != nil {
			return err
		}
		for i, v := range entries {
			if err := logs.Put(binary.BigEndian.AppendUint64(nil, i), v); err != nil {
				return err
			}
		}
		conf, err := tx.CreateBucketIfNotExists(confBucket)
		if err != nil {
			return err
		}
		for k, v := range stable {
			if err := conf.Put([]byte(k), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestDecodeV1Errors(t *testing.T) {
	good := encodeV1(&raft.Log{Index: 1, Term: 1, Data: []byte("x")})
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"other version", append([]byte{2}, good[1:]...)},
		{"msgpack map", []byte{0x86, 0xa5}},
		{"short header", good[:3]},
		{"short data", good[:len(good)-2]},
		{"trailing", append(good, 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var l raft.Log
			if err := decodeV1(tc.in, &l); err == nil {
				t.Fatalf("decodeV1(%x) accepted: %+v", tc.in, l)
			}
		})
	}
}

// FuzzDecodeV1 feeds arbitrary bytes (a corrupt file) to the decoder: it
// must fail cleanly, and what it accepts must encode back to an entry that
// decodes the same.
func FuzzDecodeV1(f *testing.F) {
	f.Add(encodeV1(&raft.Log{Index: 1, Term: 1, Data: []byte("x")}))
	f.Add([]byte{1, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var l raft.Log
		if err := decodeV1(b, &l); err != nil {
			return
		}
		var again raft.Log
		if err := decodeV1(encodeV1(&l), &again); err != nil || !reflect.DeepEqual(l, again) {
			t.Fatalf("round trip: %+v vs %+v (%v)", l, again, err)
		}
	})
}

func tempStore(t *testing.T) string { return filepath.Join(t.TempDir(), "raft.db") }
