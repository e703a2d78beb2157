// Package adminapi is a node's local admin API: the wire types, the HTTP
// handler over a Backend (package node implements it; tests use an
// in-memory one) and the Client that the command-line interface uses.
//
// The API is HTTP with JSON bodies on a 0600 unix socket in the data dir
// (datadir.AdminSocket), all under /v1/ so that later versions can live
// beside it:
//
//	GET  /v1/status            Status: this node's ID, the leader's, state,
//	                           applied Raft index, local figures
//	GET  /v1/nodes             []NodeView: the Raft configuration merged with gossip
//	POST /v1/leave             leave the mesh, then stop the node
//	POST /v1/submit            SubmitRequest → SubmitResult: check, import and
//	                           queue derivations with their .drv closures; the
//	                           answer has the Raft index that committed them
//	GET  /v1/builds            []BuildView, selected by ?id=, ?state=, ?after=,
//	                           ?limit=
//	GET  /v1/builds/{id}/log   the build's log as text, from whichever member
//	                           holds it; ?follow=1 until the build ends
//	GET  /v1/changes           Changes: the builds changed after ?cursor=,
//	                           waiting up to ?wait= for one (a long poll)
//	POST /v1/cancel            ActionRequest → ActionResult: cancel builds
//	POST /v1/retry             ActionRequest → ActionResult: re-queue failed
//	                           or canceled builds
//	GET  /v1/acl               ACLView: the Guix ACL and the Nix keys of every member
//	POST /v1/gc                GCRequest → GCResult: collect the node's store
//	                           now (or dry), with each item removed and its size
//
// Every GET takes ?index=N and ?wait=D (ReadAt): the node answers once its
// replica of the build queue has applied Raft index N, waiting at most D
// (default 10s, at most 5m). That is how a read sees a write made through
// any node: a submit on a follower is committed by the leader, and the
// follower's replica applies it a little later. Every GET answer carries
// the applied index in the X-Tbfg-Index header.
//
// Errors answer {"error": "...", "kind": "..."}: 400 for a bad request
// (ErrBadRequest, e.g. a derivation whose output paths do not recompute),
// 404 for an unknown build or a build without a log (ErrNoBuild,
// ErrNoLog), 503 while the node is starting or stopping (ErrUnavailable)
// or when ?index= was not applied in time (ErrIndexWait). The Client turns
// them back into errors with the node's text, matching the same sentinels.
// A log cut short ends with an X-Tbfg-Log-Error trailer.
//
// Scripts rely on the JSON names of the wire types: fields may be added,
// never renamed.
//
// The package does not know how a node answers: what a build, a member or
// a key is comes from the Backend.
package adminapi
