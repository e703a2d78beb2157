// Package adminapi is a node's local admin API: the wire types, the HTTP
// handler over a Backend (package node implements it; tests use an
// in-memory one) and the Client that the command-line interface uses.
//
// The API is HTTP with JSON bodies on a 0600 unix socket in the data dir
// (datadir.AdminSocket), all under /v1/ so that later versions can live
// beside it:
//
//	GET  /v1/status  Status: this node's ID, the leader's, state, local figures
//	GET  /v1/nodes   []NodeView: the Raft configuration merged with gossip
//	POST /v1/leave   leave the mesh, then stop the node
//	POST /v1/submit  SubmitRequest → SubmitResult: check, import and queue
//	                 derivations with their .drv closures
//	GET  /v1/builds  []BuildView, selected by ?id=, ?state=, ?after=, ?limit=
//	GET  /v1/acl     ACLView: the Guix ACL and the Nix keys of every member
//
// Errors answer {"error": "..."}: 400 for a bad request (ErrBadRequest,
// e.g. a derivation whose output paths do not recompute), 404 for an
// unknown build (ErrNoBuild), 503 while the node is starting or stopping
// (ErrUnavailable). The Client turns them back into errors matching the
// same sentinels.
//
// Scripts rely on the JSON names of the wire types: fields may be added,
// never renamed.
//
// The package does not know how a node answers: what a build, a member or
// a key is comes from the Backend.
package adminapi
