package scheduler

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/hashicorp/raft"
)

// FSM is the build queue as a raft.FSM, with locking for local readers and
// notifications for subscribers.
//
// Its contract, as for any raft.FSM: Apply is called once per committed log
// entry, in log order, on every node, and must give the same result on all of
// them, so it reads no clock, no randomness and iterates no map in an order
// that matters. Apply returns nil, a []byte (the Submit response) or an error
// (the command was rejected and changed nothing); these travel back to the
// node that proposed the command. Snapshot and Apply are never called
// concurrently by Raft; readers (status pages, the allocation loop, the
// agent) may call Read at any time. Restore of an empty snapshot (no bytes at
// all) resets the FSM to its initial state, as NewFSM returns it: the mesh
// does that before it wipes Raft history that belongs to another cluster.
//
// An entry or snapshot of a format this binary cannot read halts the FSM
// (a *TooNewError, see Halted): from then on it applies nothing, so that it
// never holds a state the other members do not.
type FSM struct {
	mu     sync.RWMutex
	state  *State
	index  uint64 // Raft index of the last applied entry
	logger *slog.Logger
	subs   notifier
	feed   feed // what each command changed, for status readers (feed.go)

	halted   chan struct{} // closed when haltErr is set
	haltOnce sync.Once
	haltErr  error // a *TooNewError; under mu
}

// NewFSM returns an FSM over an empty state.
func NewFSM(logger *slog.Logger) *FSM {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &FSM{state: NewState(), logger: logger, halted: make(chan struct{})}
}

var _ raft.FSM = (*FSM)(nil)

// Apply implements raft.FSM.
func (f *FSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	f.mu.Lock()
	if f.haltErr != nil {
		err := f.haltErr
		f.mu.Unlock()
		return err
	}
	resp, err := f.state.Apply(l.Data)
	if tooNew(err) {
		err = f.halt(&TooNewError{Index: l.Index, Format: CommandFormat(l.Data), Err: err})
		f.mu.Unlock()
		return err
	}
	f.index = l.Index
	f.state.applied = l.Index
	var ev event
	var ch Change
	if err == nil {
		ev = f.state.event()
		ch = f.state.takeChange(l.Index)
	}
	f.mu.Unlock()
	if err != nil {
		f.feed.advance()
		f.logger.Debug("command rejected", "index", l.Index, "err", err)
		return err
	}
	f.feed.add(ch)
	f.subs.publish(ev)
	if resp == nil {
		return nil
	}
	return resp
}

// Read calls fn with the state under a read lock. fn must not keep the state
// or anything reached through it after returning, nor call Apply.
func (f *FSM) Read(fn func(s *State)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(f.state)
}

// Index is the Raft index of the last command entry this FSM applied. Raft
// does not tell an FSM the index of a snapshot it restores, so the snapshot
// carries it (from version 3): after a restore Index is the snapshot's. After
// restoring an older snapshot it stays where it was until the next entry.
func (f *FSM) Index() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.index
}

// Snapshot implements raft.FSM: it encodes the state while holding the read
// lock, so Persist can write it while Apply carries on.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	data, err := f.state.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("encode snapshot: %w", err)
	}
	return &fsmSnapshot{data: data}, nil
}

// Restore implements raft.FSM: it replaces the state with a snapshot's and
// wakes every subscriber. An empty snapshot resets the FSM to its initial
// state, including Index; anything else must be a snapshot MarshalBinary
// wrote.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("read snapshot: %w", err)
	}
	if len(data) == 0 {
		f.mu.Lock()
		f.state, f.index = NewState(), 0
		f.mu.Unlock()
		f.feed.add(Change{Reset: true})
		f.subs.publishAll()
		return nil
	}
	s, err := UnmarshalState(data)
	if tooNew(err) {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.halt(&TooNewError{Err: err})
	}
	if err != nil {
		return err
	}
	f.mu.Lock()
	// The Reset change keeps the index this FSM had before: readers'
	// cursors pair a change's Seq with its Index, and a restored FSM's
	// first change must not look like another replica's change at the
	// snapshot's index (node's changesAfter relies on it).
	index := f.index
	if s.applied != 0 {
		f.index = s.applied
	} else {
		s.applied = f.index // a version 1 or 2 snapshot
	}
	f.state = s
	f.mu.Unlock()
	f.feed.add(Change{Index: index, Reset: true})
	f.subs.publishAll()
	return nil
}

// Halted is closed when the FSM met an entry or snapshot it cannot read;
// Err then says which. The node stops: it cannot follow the mesh.
func (f *FSM) Halted() <-chan struct{} { return f.halted }

// Err is the *TooNewError that halted the FSM, or nil.
func (f *FSM) Err() error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.haltErr
}

// halt records err as the reason the FSM applies nothing more, logs it
// once and returns it. f.mu must be held.
func (f *FSM) halt(err *TooNewError) error {
	f.haltOnce.Do(func() {
		f.haltErr = err
		f.logger.Error("cannot read the replicated state; applying nothing more", "err", err)
		close(f.halted)
	})
	return f.haltErr
}

// tooNew reports whether err means a command or snapshot newer than this
// binary reads: a format or a command type it does not know.
func tooNew(err error) bool {
	return errors.Is(err, ErrVersion) || errors.Is(err, ErrUnknownCommand)
}

// fsmSnapshot is an encoded state waiting to be persisted.
type fsmSnapshot struct{ data []byte }

// Persist implements raft.FSMSnapshot.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s.data); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("write snapshot: %w", err)
	}
	return sink.Close()
}

// Release implements raft.FSMSnapshot.
func (s *fsmSnapshot) Release() {}
