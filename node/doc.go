// Package node is the composition root of one running tbfg-node: configuration
// (Config, Validate), the data directory, start and stop order of the
// components (New, Run), the status this node gossips, and the local admin API
// that the command-line interface uses (Client).
//
// The data directory (default /var/lib/tbfg for root, else
// $XDG_STATE_HOME/tbfg) is mode 0700 and holds:
//
//	mesh.secret  the mesh secret: 64 hexadecimal digits and a newline, 0600;
//	             the same text init prints and join --secret takes
//	admin.sock   the admin API: HTTP with JSON bodies on a unix socket, 0600
//	lock         flock(2)ed by the running node, so two never share a data dir
//
// and the mesh's own files (identity, Raft state, address book).
//
// Admin API, all under /v1/ so that later versions can live beside it:
//
//	GET  /v1/status  Status: this node's ID, the leader's, state, local figures
//	GET  /v1/nodes   []NodeView: the Raft configuration merged with gossip
//	POST /v1/leave   leave the mesh, then stop the node
//
// Errors answer {"error": "..."}, with 503 while the node is starting or
// stopping. Routes for submitting and listing builds are added to the same
// mux.
//
// Until the scheduler's state machine is wired in, a node replicates a
// CommandLog; Config.FSM takes any raft.FSM.
//
// The package does not know how the mesh works inside, nor how builds are
// scheduled: it only wires the parts together.
package node
