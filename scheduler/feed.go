package scheduler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// Change is what one applied command changed, for readers that publish
// events (the status server's /events): which builds and members to re-read.
type Change struct {
	// Seq numbers the changes of this FSM from 1, without gaps.
	Seq uint64
	// Index is the Raft index of the command.
	Index uint64
	// Builds changed state or node (new builds included) or were compacted
	// (State.Build no longer finds them), ascending.
	Builds []BuildID
	// Members joined, were lost or left.
	Members []string
	// Reset means anything may have changed (a snapshot was restored, or a
	// command changed more builds than a change lists): re-read the state.
	Reset bool
}

// Feed sizes: a reader that falls further behind than feedSize changes, or a
// command that changes more than feedMaxBuilds builds, gets a Reset instead.
const (
	feedSize      = 1024
	feedMaxBuilds = 4096
)

// ErrIndexWait is returned (wrapped with the indices) by FSM.WaitIndex when
// its context ends before the FSM has applied the awaited index.
var ErrIndexWait = errors.New("raft index not applied yet")

// feed keeps the latest changes of an FSM and wakes index waiters.
type feed struct {
	mu      sync.Mutex
	ring    []Change // circular once full: ring[head] is the oldest
	head    int
	seq     uint64
	applied chan struct{} // closed and replaced after every entry
}

// add appends a change and wakes index waiters.
func (fd *feed) add(c Change) {
	fd.mu.Lock()
	defer fd.mu.Unlock()
	fd.seq++
	c.Seq = fd.seq
	if len(fd.ring) < feedSize {
		fd.ring = append(fd.ring, c)
	} else {
		fd.ring[fd.head] = c
		fd.head = (fd.head + 1) % feedSize
	}
	fd.wakeLocked()
}

// advance wakes index waiters after an entry that changed nothing.
func (fd *feed) advance() {
	fd.mu.Lock()
	defer fd.mu.Unlock()
	fd.wakeLocked()
}

func (fd *feed) wakeLocked() {
	if fd.applied != nil {
		close(fd.applied)
		fd.applied = nil
	}
}

// wait returns a channel closed after the next entry.
func (fd *feed) wait() <-chan struct{} {
	fd.mu.Lock()
	defer fd.mu.Unlock()
	if fd.applied == nil {
		fd.applied = make(chan struct{})
	}
	return fd.applied
}

// takeChange returns what the last applied command changed.
func (s *State) takeChange(index uint64) Change {
	c := Change{Index: index}
	if len(s.ix.touched) > feedMaxBuilds {
		c.Reset = true
	} else {
		for _, tb := range s.ix.touched {
			c.Builds = append(c.Builds, BuildID(tb.bi+1))
		}
		slices.Sort(c.Builds)
	}
	for _, n := range s.ix.members {
		c.Members = append(c.Members, s.nodes[n].id)
	}
	return c
}

// ChangesSince returns the changes after seq (0: all those kept), oldest
// first. complete is false when changes after seq were dropped since: the
// reader must then re-read the whole state. A reader calls it after each
// wake-up of a Changes subscription, with the Seq of the last change it saw.
func (f *FSM) ChangesSince(seq uint64) (changes []Change, complete bool) {
	fd := &f.feed
	fd.mu.Lock()
	defer fd.mu.Unlock()
	want, complete := fd.seq-seq, true
	if seq > fd.seq || want > uint64(len(fd.ring)) { // not a Seq of this FSM, or dropped since
		want, complete = uint64(len(fd.ring)), false
	}
	out := make([]Change, 0, want)
	for i := uint64(len(fd.ring)) - want; i < uint64(len(fd.ring)); i++ {
		out = append(out, fd.ring[(fd.head+int(i))%len(fd.ring)])
	}
	return out, complete
}

// LastChange is the Seq of the latest change, where a new reader starts.
func (f *FSM) LastChange() uint64 {
	f.feed.mu.Lock()
	defer f.feed.mu.Unlock()
	return f.feed.seq
}

// WaitIndex returns once this FSM has applied the entry at Raft index index
// (or a later one), so that a read after it sees a write committed there. It
// returns an error wrapping ErrIndexWait and ctx's error, naming both
// indices, if ctx ends first. The caller bounds the wait with ctx.
func (f *FSM) WaitIndex(ctx context.Context, index uint64) error {
	for {
		applied := f.feed.wait() // before reading the index, so no entry is missed
		cur := f.Index()
		if cur >= index {
			return nil
		}
		select {
		case <-applied:
		case <-ctx.Done():
			return fmt.Errorf("%w: waiting for index %d, applied %d: %w", ErrIndexWait, index, cur, ctx.Err())
		}
	}
}
