// Package scheduler owns the replicated build queue: the state machine that Raft
// replicates (raft.FSM), its commands and snapshots, and the allocation policy
// that the leader runs over a read-only view of that state.
//
// It knows nothing about libp2p, HTTP or how builds are executed.
package scheduler
