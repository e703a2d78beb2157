package scheduler

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// applyAt feeds a command to an FSM at a Raft index.
func applyAt(f *FSM, index uint64, c Command) any {
	return f.Apply(&raft.Log{Type: raft.LogCommand, Index: index, Data: Encode(c)})
}

func TestChangesSince(t *testing.T) {
	f := NewFSM(nil)
	if ch, ok := f.ChangesSince(0); len(ch) != 0 || !ok {
		t.Fatalf("empty feed: %v %v", ch, ok)
	}
	applyAt(f, 1, joined("n1", 2, x86))
	applyAt(f, 2, &Submit{Derivations: []Derivation{drv("a", x86), drv("b", x86, "a")}})
	applyAt(f, 3, &Allocate{Allocations: []Allocation{{2, "n1"}}}) // rejected: inputs missing
	applyAt(f, 4, &Allocate{Allocations: []Allocation{{1, "n1"}}})

	ch, ok := f.ChangesSince(0)
	if !ok || len(ch) != 3 {
		t.Fatalf("changes: %+v %v", ch, ok)
	}
	want := []Change{
		{Seq: 1, Index: 1, Members: []string{"n1"}},
		{Seq: 2, Index: 2, Builds: []BuildID{1, 2}},
		{Seq: 3, Index: 4, Builds: []BuildID{1}},
	}
	for i := range want {
		if ch[i].Seq != want[i].Seq || ch[i].Index != want[i].Index || !slices.Equal(ch[i].Builds, want[i].Builds) ||
			!slices.Equal(ch[i].Members, want[i].Members) || ch[i].Reset {
			t.Fatalf("change %d: %+v, want %+v", i, ch[i], want[i])
		}
	}
	if ch, ok := f.ChangesSince(2); !ok || len(ch) != 1 || ch[0].Seq != 3 {
		t.Fatalf("since 2: %+v %v", ch, ok)
	}
	if ch, ok := f.ChangesSince(3); !ok || len(ch) != 0 {
		t.Fatalf("since the last: %+v %v", ch, ok)
	}
	if _, ok := f.ChangesSince(99); ok {
		t.Fatal("a Seq from the future must not be complete")
	}
	if f.LastChange() != 3 {
		t.Fatalf("LastChange %d", f.LastChange())
	}
}

func TestChangesSinceDropsAndResets(t *testing.T) {
	f := NewFSM(nil)
	applyAt(f, 1, joined("n1", 2, x86))
	for i := range feedSize + 10 {
		applyAt(f, uint64(i+2), joined("n1", 2, x86))
	}
	ch, ok := f.ChangesSince(1)
	if ok || len(ch) != feedSize || ch[0].Seq != 12 || ch[len(ch)-1].Seq != feedSize+11 {
		t.Fatalf("after overflow: %d changes from %d, complete %v", len(ch), ch[0].Seq, ok)
	}
	if ch, ok := f.ChangesSince(feedSize + 10); !ok || len(ch) != 1 {
		t.Fatalf("recent reader: %d %v", len(ch), ok)
	}
	s, _ := f.Snapshot()
	sink := &memSink{}
	if err := s.Persist(sink); err != nil {
		t.Fatal(err)
	}
	seq := f.LastChange()
	if err := f.Restore(io.NopCloser(bytes.NewReader(sink.data))); err != nil {
		t.Fatal(err)
	}
	if ch, ok := f.ChangesSince(seq); !ok || len(ch) != 1 || !ch[0].Reset {
		t.Fatalf("after restore: %+v %v", ch, ok)
	}
}

func TestChangeOfLargeSubmitIsReset(t *testing.T) {
	f := NewFSM(nil)
	var drvs []Derivation
	for i := range feedMaxBuilds + 1 {
		drvs = append(drvs, drv(strconv.Itoa(i), x86))
	}
	applyAt(f, 1, &Submit{Derivations: drvs})
	ch, _ := f.ChangesSince(0)
	if len(ch) != 1 || !ch[0].Reset || ch[0].Builds != nil {
		t.Fatalf("large submit: reset %v, %d builds", ch[0].Reset, len(ch[0].Builds))
	}
}

func TestWaitIndex(t *testing.T) {
	f := NewFSM(nil)
	applyAt(f, 1, joined("n1", 2, x86))
	if err := f.WaitIndex(context.Background(), 1); err != nil {
		t.Fatalf("applied index: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- f.WaitIndex(context.Background(), 3) }()
	// Index 2 is rejected; index 3 is applied. Either way the waiter must
	// see the index move and return once 3 is reached.
	applyAt(f, 2, &Allocate{Allocations: []Allocation{{99, "n1"}}})
	applyAt(f, 3, joined("n1", 2, x86))
	if err := <-done; err != nil {
		t.Fatalf("wait for 3: %v", err)
	}
	// A rejected command at the awaited index also ends the wait.
	go func() { done <- f.WaitIndex(context.Background(), 4) }()
	applyAt(f, 4, &Allocate{Allocations: []Allocation{{99, "n1"}}})
	if err := <-done; err != nil {
		t.Fatalf("wait for rejected 4: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	err := f.WaitIndex(ctx, 9)
	if !errors.Is(err, ErrIndexWait) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait for 9: %v", err)
	}
	if want := "waiting for index 9, applied 4"; !bytes.Contains([]byte(err.Error()), []byte(want)) {
		t.Fatalf("error %q does not say %q", err, want)
	}
}
