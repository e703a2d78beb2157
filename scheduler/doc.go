// Package scheduler owns the replicated build queue: the state machine that Raft
// replicates (FSM, a raft.FSM over State), its commands and snapshots, and the
// allocation policy that the leader runs over a read-only view of that state.
//
// The state holds every build (one per derivation, with its graph edges,
// priority, attempt and allocated node), which nodes hold which store items
// (with the narinfo fields and signed narinfo every node serves), the member
// nodes with their signing keys, systems and features, and the memory of
// failed outputs. It changes only through encoded Commands applied in log
// order; Apply is deterministic and rejects invalid commands without changing
// anything.
//
// Finished builds older than the farm's history leave the state through a
// Compact command (compact.go): their outputs' items stay, their records go.
//
// The leader runs a Leader loop: State.Plan turns the state and the nodes'
// gossiped NodeViews into Allocations, committed as one Allocate command that
// Apply re-checks. A success committed with Succeeded.TakeNext also gives its
// node, in the same entry, a dependent it made ready (takenext.go): chains go
// on where their inputs are without a round of that loop. Every node reads the state through FSM.Read and learns of
// changes through FSM.WatchNode, FSM.WatchPaths and FSM.Changes.
//
// Commands and snapshots share one replicated format number (FormatVersion,
// MinFormat): an FSM that meets a newer one halts with a TooNewError rather
// than apply anything wrongly, and writers propose a newer format only once
// every member reads it (FormatGate; DESIGN.md, "Upgrades").
//
// It knows nothing about libp2p, HTTP or how builds are executed; store paths
// are plain strings. See DESIGN.md for the reasons behind the design.
package scheduler
