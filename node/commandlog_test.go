package node

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/hashicorp/raft"
)

// memSink is a raft.SnapshotSink in memory.
type memSink struct {
	bytes.Buffer
	cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }
func (s *memSink) Close() error  { return nil }

func TestCommandLogSnapshotRestore(t *testing.T) {
	l := NewCommandLog()
	for i, cmd := range [][]byte{[]byte("a"), {}, bytes.Repeat([]byte{0xff}, 300)} {
		if r := l.Apply(&raft.Log{Index: uint64(i + 1), Data: cmd}); r != nil {
			t.Fatalf("Apply returned %v, want nil", r)
		}
	}
	snap, err := l.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	l.Apply(&raft.Log{Data: []byte("after the snapshot")})
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	r := NewCommandLog()
	if err := r.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(r.Entries()), fmt.Sprint(l.Entries()[:3]); got != want {
		t.Fatalf("restored %s, want %s", got, want)
	}
	if err := r.Restore(io.NopCloser(bytes.NewReader(nil))); err != nil || len(r.Entries()) != 0 {
		t.Fatalf("empty snapshot: %v, %d entries; want an empty log", err, len(r.Entries()))
	}
}

func TestCommandLogRestoreRejectsCorruptSnapshots(t *testing.T) {
	for _, in := range []string{"x", "tbfg-command-log 2\n", snapshotMagic + "\x05ab", snapshotMagic + "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"} {
		l := NewCommandLog()
		l.Apply(&raft.Log{Data: []byte("kept")})
		err := l.Restore(io.NopCloser(bytes.NewReader([]byte(in))))
		if !errors.Is(err, ErrBadSnapshot) {
			t.Errorf("Restore(%q) = %v, want ErrBadSnapshot", in, err)
		}
		if len(l.Entries()) != 1 {
			t.Errorf("Restore(%q) changed the log", in)
		}
	}
}

func FuzzCommandLogRestore(f *testing.F) {
	var sink memSink
	encodeCommandLog(&sink, [][]byte{[]byte("one"), nil, []byte("three")})
	f.Add(sink.Bytes())
	f.Add([]byte(snapshotMagic))
	f.Add([]byte(snapshotMagic + "\x80\x80\x80\x80\x04"))
	f.Fuzz(func(t *testing.T, in []byte) {
		entries, err := decodeCommandLog(bytes.NewReader(in))
		if err != nil {
			return
		}
		var out bytes.Buffer
		encodeCommandLog(&out, entries)
		again, err := decodeCommandLog(&out)
		if err != nil || fmt.Sprint(again) != fmt.Sprint(entries) {
			t.Fatalf("re-encoded snapshot decodes to %v, %v", again, err)
		}
	})
}
