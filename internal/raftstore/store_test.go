package raftstore

import (
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func open(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "raft.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestLogStore(t *testing.T) {
	s := open(t)
	var logs []*raft.Log
	for i := uint64(1); i <= 10; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 2, Type: raft.LogCommand, Data: []byte{byte(i)}, AppendedAt: time.Unix(0, int64(i))})
	}
	if err := s.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(1, 3); err != nil {
		t.Fatal(err)
	}
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	if first != 4 || last != 10 {
		t.Fatalf("first, last = %d, %d; want 4, 10", first, last)
	}
	var got raft.Log
	if err := s.GetLog(7, &got); err != nil || !reflect.DeepEqual(&got, logs[6]) {
		t.Fatalf("GetLog(7) = %+v, %v; want %+v", got, err, logs[6])
	}
	if err := s.GetLog(2, &got); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("GetLog(2) after delete: %v", err)
	}
}

func TestStableStore(t *testing.T) {
	s := open(t)
	if _, err := s.Get([]byte("x")); err == nil || err.Error() != "not found" {
		t.Fatalf("Get of unset key: %v; raft expects \"not found\"", err)
	}
	if err := s.SetUint64([]byte("term"), 42); err != nil {
		t.Fatal(err)
	}
	if v, err := s.GetUint64([]byte("term")); v != 42 || err != nil {
		t.Fatalf("GetUint64 = %d, %v", v, err)
	}
}

func TestReopenKeepsState(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s.StoreLog(&raft.Log{Index: 5, Term: 1, Data: []byte("a")})
	s.Set([]byte("k"), []byte("v"))
	s.Close()
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if last, _ := s.LastIndex(); last != 5 {
		t.Fatalf("last index after reopen: %d", last)
	}
	if v, _ := s.Get([]byte("k")); string(v) != "v" {
		t.Fatalf("stable value after reopen: %q", v)
	}
}

// FuzzDecodeLog feeds arbitrary bytes (a corrupt file) to the decoder: it
// must fail cleanly, and what it accepts must encode back identically.
func FuzzDecodeLog(f *testing.F) {
	f.Add(encodeLog(&raft.Log{Index: 1, Term: 1, Data: []byte("x")}))
	f.Add([]byte{1, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var l raft.Log
		if err := decodeLog(b, &l); err != nil {
			return
		}
		var again raft.Log
		if err := decodeLog(encodeLog(&l), &again); err != nil || !reflect.DeepEqual(l, again) {
			t.Fatalf("round trip: %+v vs %+v (%v)", l, again, err)
		}
	})
}
