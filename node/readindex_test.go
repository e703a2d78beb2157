package node

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/tbfg/tbfg-node/internal/queuetest"
	"github.com/tbfg/tbfg-node/scheduler"
)

// t0 stamps the commands of the change feed tests, so that two queues fed
// the same commands have the same log.
var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// feedQueue returns a queue with three independent builds, 1 to 3, after
// applying first.
func feedQueue(t *testing.T, first ...scheduler.Command) *queuetest.Queue {
	q := queuetest.New(t, func() time.Time { return t0 })
	for _, c := range first {
		q.Apply(t, c)
	}
	sub := &scheduler.Submit{Time: t0, Submitter: "test"}
	for i := range 3 {
		name := fmt.Sprintf("b%d", i)
		h := fmt.Sprintf("%032d", i)
		sub.Derivations = append(sub.Derivations, scheduler.Derivation{Path: "/gnu/store/" + h + "-" + name + ".drv",
			System: "x86_64-linux", Outputs: []scheduler.Output{{Name: "out", Path: "/gnu/store/" + h + "-" + name}}})
	}
	q.Apply(t, sub)
	return q
}

func cancel(ids ...scheduler.BuildID) *scheduler.Cancel {
	return &scheduler.Cancel{Time: t0, Builds: ids}
}

func TestChangesAfter(t *testing.T) {
	q := feedQueue(t)
	first := changesAfter(q.FSM, "")
	if !first.Reset || len(first.Builds) != 0 || first.Index != q.FSM.Index() {
		t.Fatalf("changes after no cursor: %+v; want a Reset at index %d", first, q.FSM.Index())
	}
	same := changesAfter(q.FSM, first.Cursor)
	if same.Reset || len(same.Builds) != 0 || same.Cursor != first.Cursor {
		t.Fatalf("changes after the latest cursor: %+v; want none, and the same cursor %s", same, first.Cursor)
	}
	q.Apply(t, cancel(2))
	q.Apply(t, cancel(3, 2))
	next := changesAfter(q.FSM, first.Cursor)
	if next.Reset || !slices.Equal(next.Builds, []uint64{2, 3}) || next.Cursor == first.Cursor || next.Index != q.FSM.Index() {
		t.Fatalf("changes after two cancels: %+v; want builds 2 and 3 and a new cursor", next)
	}
	for _, bad := range []string{"x", "1-", "-1", "99-1", "1-99", first.Cursor + "0"} {
		if ch := changesAfter(q.FSM, bad); !ch.Reset || ch.Cursor != next.Cursor {
			t.Errorf("changes after cursor %q: %+v; want a Reset with the latest cursor %s", bad, ch, next.Cursor)
		}
	}
}

// TestChangesAfterOtherFSM checks the cursors another replica of the same
// log takes: one that replayed the log, all; one that started from a
// snapshot, those after the snapshot; and none once a snapshot was
// restored after the cursor.
func TestChangesAfterOtherFSM(t *testing.T) {
	q := feedQueue(t)
	submitted := changesAfter(q.FSM, "").Cursor
	snap := snapshot(t, q.FSM)
	q.Apply(t, cancel(1))
	canceled := changesAfter(q.FSM, submitted).Cursor
	q.Apply(t, cancel(2))

	replay := feedQueue(t)
	replay.Apply(t, cancel(1))
	replay.Apply(t, cancel(2))
	if ch := changesAfter(replay.FSM, submitted); ch.Reset || !slices.Equal(ch.Builds, []uint64{1, 2}) {
		t.Errorf("a replica that replayed the log: %+v; want builds 1 and 2 changed", ch)
	}

	restored := scheduler.NewFSM(nil) // restores the snapshot after the submit, then applies the rest
	if err := restored.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatal(err)
	}
	for i, c := range []scheduler.Command{cancel(1), cancel(2)} {
		if resp := restored.Apply(&raft.Log{Index: uint64(i + 2), Type: raft.LogCommand, Data: scheduler.Encode(c)}); resp != nil {
			t.Fatal(resp)
		}
	}
	if ch := changesAfter(restored, submitted); !ch.Reset {
		t.Errorf("a replica that started from a later snapshot, cursor before it: %+v; want a Reset", ch)
	}
	if ch := changesAfter(restored, canceled); ch.Reset || !slices.Equal(ch.Builds, []uint64{2}) {
		t.Errorf("a replica that started from a snapshot, cursor after it: %+v; want build 2 changed", ch)
	}

	if err := q.FSM.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatal(err)
	}
	if ch := changesAfter(q.FSM, canceled); !ch.Reset {
		t.Errorf("after a snapshot was restored: %+v; want a Reset", ch)
	}
}

// snapshot returns f's snapshot.
func snapshot(t *testing.T, f *scheduler.FSM) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := snap.Persist(&sink{Buffer: &buf}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestChangesAfterDropped(t *testing.T) {
	q := feedQueue(t)
	cur := changesAfter(q.FSM, "").Cursor
	for range 1100 { // more than the FSM keeps
		q.Apply(t, cancel(1))
	}
	if ch := changesAfter(q.FSM, cur); !ch.Reset {
		t.Errorf("a cursor older than the changes kept: %+v; want a Reset", ch)
	}
}

func TestWaitChanges(t *testing.T) {
	q := feedQueue(t)
	cur := changesAfter(q.FSM, "").Cursor
	ctx, stop := context.WithTimeout(context.Background(), time.Millisecond)
	idle := waitChanges(ctx, q.FSM, cur)
	stop()
	if idle.Reset || len(idle.Builds) != 0 || idle.Cursor != cur {
		t.Errorf("no change until ctx ended: %+v; want none and the same cursor", idle)
	}
	q.Apply(t, cancel(3))
	cur = changesAfter(q.FSM, cur).Cursor
	got := make(chan []uint64)
	go func() { got <- waitChanges(context.Background(), q.FSM, cur).Builds }()
	q.Apply(t, cancel(3)) // changes no build: the wait goes on
	q.Apply(t, cancel(2))
	if ids := <-got; !slices.Equal(ids, []uint64{2}) {
		t.Errorf("waited for changes: builds %v, want [2]", ids)
	}
}

// sink is a raft.SnapshotSink over a buffer.
type sink struct{ *bytes.Buffer }

func (s *sink) ID() string    { return "test" }
func (s *sink) Cancel() error { return nil }
func (s *sink) Close() error  { return nil }

// FuzzParseCursor checks that any cursor a client sends is either refused
// or read as exactly the two numbers it spells.
func FuzzParseCursor(f *testing.F) {
	for _, s := range []string{"", "0-0", "12-3", "-", "1-", "-1", "1-2-3", "+1-2", "18446744073709551616-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		index, seq, ok := parseCursor(s)
		if !ok {
			return
		}
		canon := fmt.Sprintf("%d-%d", index, seq)
		i2, s2, ok2 := parseCursor(canon)
		if !ok2 || i2 != index || s2 != seq {
			t.Fatalf("cursor %q read as %s, which reads back as %d-%d (ok %v)", s, canon, i2, s2, ok2)
		}
	})
}
