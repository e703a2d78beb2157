package scheduler

import (
	"context"
	"sync"

	"github.com/hashicorp/raft"
)

// LocalApplier is an Applier that applies commands straight to an FSM, with
// no Raft: the in-memory implementation for tests and single-process tools.
// It numbers entries itself and returns the FSM's response as the mesh does.
type LocalApplier struct {
	// FSM is the state machine every command is applied to.
	FSM *FSM

	mu    sync.Mutex
	index uint64
}

// Apply implements Applier.
func (a *LocalApplier) Apply(ctx context.Context, cmd []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock() // entries are applied one at a time, in order, like Raft's
	a.index++
	switch resp := a.FSM.Apply(&raft.Log{Index: a.index, Type: raft.LogCommand, Data: cmd}).(type) {
	case error:
		return nil, resp
	case []byte:
		return resp, nil
	}
	return nil, nil
}
