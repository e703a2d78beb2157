package node

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/hashicorp/raft"
	"github.com/tbfg/tbfg-node/scheduler"
)

// resettableFSM is the scheduler's FSM as the mesh needs it: the mesh resets
// the state machine by restoring an empty snapshot (before it wipes Raft
// history that belongs to another cluster), which the scheduler's snapshot
// format does not allow. An empty snapshot restores an empty state.
type resettableFSM struct {
	*scheduler.FSM
}

var _ raft.FSM = resettableFSM{}

// Restore implements raft.FSM.
func (f resettableFSM) Restore(rc io.ReadCloser) error {
	br := bufio.NewReader(rc)
	if _, err := br.Peek(1); errors.Is(err, io.EOF) {
		rc.Close()
		empty, err := scheduler.NewState().MarshalBinary()
		if err != nil {
			return fmt.Errorf("reset state machine: %w", err)
		}
		return f.FSM.Restore(io.NopCloser(bytes.NewReader(empty)))
	}
	return f.FSM.Restore(readCloser{br, rc})
}

// readCloser reads from a buffered reader and closes the underlying one.
type readCloser struct {
	io.Reader
	io.Closer
}
