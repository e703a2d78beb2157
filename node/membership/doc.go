// Package membership keeps a node's place in the replicated build queue and
// runs the work only the leader does.
//
// Every node registers itself with NodeJoined (its keys, systems, features
// and max builds) once the mesh has it in its Raft configuration, and again
// whenever the state has lost it or its configuration changed; Registered
// tells the rest of the node when the local replica lists it. A node that
// leaves commits NodeLeft before it leaves the mesh.
//
// While the node leads, membership runs the leader-only loops (the
// scheduler's allocation loop, and the compaction loop that drops finished
// builds older than History from the replicated state every CompactEvery,
// stamping the cutoff into each scheduler.Compact) in a group of their own,
// started when the
// mesh reports leadership and stopped when it is lost (establishLeadership
// and revokeLeadership), and on every tick declares lost (NodeLost) the
// members that left the Raft configuration or were silent past RemoveAfter,
// which re-queues their builds. The rule for a silent member is
// lostMembers: silence counts from its last gossip or its last NodeJoined,
// whichever is later, and a member still in the configuration that was never
// heard by gossip is left to the mesh to remove.
//
// View turns a member's gossiped status (load and its limit, free store
// space and --min-free, speed) into the scheduler's NodeView: what the
// allocation loop plans with, and what status pages use to say why a node
// takes no new builds.
//
// It also keeps the mesh's replicated format (see scheduler's DESIGN.md,
// "Upgrades"): MeshFormat is the lowest format any member gossips that it
// reads, the gate every writer of a newer command checks; on every tick it
// reports, through Config.Incompatible, a member too old for the formats
// this binary writes (CheckMeshFormat).
//
// The package reads the mesh through a small interface and time through a
// clock, so that these rules are tested without a mesh. It does not know how
// builds are allocated (package scheduler) nor how the mesh works inside.
package membership
