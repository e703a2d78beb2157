// Package queuetest is a replicated build queue for the tests of the
// packages that read and commit to it, without Raft: one scheduler FSM that
// every member of a test shares through a LocalApplier, as each node's
// replica would be once Raft has applied a command everywhere; a settable
// clock; and helpers that register members, commit commands and wait for
// the state. It is for tests only, and knows nothing of the mesh.
package queuetest
