package node

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/hashicorp/raft"
)

// snapshotMagic starts every CommandLog snapshot and names its version.
const snapshotMagic = "tbfg-command-log 1\n"

// maxSnapshotEntry bounds one entry of a restored snapshot, so a corrupt
// length cannot make Restore allocate without limit.
const maxSnapshotEntry = 64 << 20

// CommandLog is the node's replicated state until the scheduler's state
// machine replaces it: the list of every command committed, in order. It
// implements raft.FSM; Apply is deterministic and returns nil.
type CommandLog struct {
	mu      sync.Mutex
	entries [][]byte
}

// NewCommandLog returns an empty log.
func NewCommandLog() *CommandLog { return &CommandLog{} }

// Apply appends the command of a committed log entry.
func (l *CommandLog) Apply(e *raft.Log) any {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, append([]byte(nil), e.Data...))
	return nil
}

// Entries returns a copy of the commands applied so far.
func (l *CommandLog) Entries() [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([][]byte(nil), l.entries...)
}

// Snapshot captures the commands applied so far. Entries are never modified,
// so the snapshot shares them.
func (l *CommandLog) Snapshot() (raft.FSMSnapshot, error) {
	return commandLogSnapshot(l.Entries()), nil
}

// Restore replaces the log with a snapshot's content; an empty snapshot
// empties it. A malformed snapshot leaves the log as it was.
func (l *CommandLog) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	entries, err := decodeCommandLog(rc)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.entries = entries
	l.mu.Unlock()
	return nil
}

// commandLogSnapshot is a CommandLog snapshot: the magic line, then each entry
// as a uvarint length and its bytes.
type commandLogSnapshot [][]byte

// Persist writes the snapshot to sink.
func (s commandLogSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := encodeCommandLog(sink, s); err != nil {
		sink.Cancel()
		return fmt.Errorf("persist command log: %w", err)
	}
	return sink.Close()
}

// Release does nothing: the snapshot holds no resources.
func (s commandLogSnapshot) Release() {}

func encodeCommandLog(w io.Writer, entries [][]byte) error {
	bw := bufio.NewWriter(w)
	bw.WriteString(snapshotMagic)
	var n [binary.MaxVarintLen64]byte
	for _, e := range entries {
		bw.Write(n[:binary.PutUvarint(n[:], uint64(len(e)))])
		bw.Write(e)
	}
	return bw.Flush()
}

// decodeCommandLog reads what encodeCommandLog wrote. An empty input is an
// empty log: the mesh restores one to reset the state machine.
func decodeCommandLog(r io.Reader) ([][]byte, error) {
	br := bufio.NewReader(r)
	if _, err := br.Peek(1); errors.Is(err, io.EOF) {
		return nil, nil
	}
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != snapshotMagic {
		return nil, fmt.Errorf("%w: does not start with %q", ErrBadSnapshot, snapshotMagic)
	}
	var entries [][]byte
	for i := 1; ; i++ {
		size, err := binary.ReadUvarint(br)
		if errors.Is(err, io.EOF) {
			return entries, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: entry %d: length: %w", ErrBadSnapshot, i, err)
		}
		if size > maxSnapshotEntry {
			return nil, fmt.Errorf("%w: entry %d: length %d over the limit of %d", ErrBadSnapshot, i, size, maxSnapshotEntry)
		}
		// Read rather than allocate the announced size: a corrupt length
		// must not cost memory the input does not back.
		e, err := io.ReadAll(io.LimitReader(br, int64(size)))
		if err != nil || uint64(len(e)) != size {
			return nil, fmt.Errorf("%w: entry %d: %d bytes announced, %d present", ErrBadSnapshot, i, size, len(e))
		}
		entries = append(entries, e)
	}
}
