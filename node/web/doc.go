// Package web is a node's status server: HTML pages, a JSON API, a stream of
// live events, Prometheus metrics and health checks, all read-only, over
// HTTP on a local address.
//
//   - Pages: / (the mesh, the queue by state and system, running builds
//     with a live tail of their logs, builds finished per hour), /builds
//     (filters, paging, newest first), /builds/{id} (derivation, inputs and
//     outputs linked to their narinfos, attempts, timings, the timeline of
//     the latest attempt as durations between its steps, the log) and
//     /failures. The timeline's leader steps come from the replica; the
//     builder's detailed steps (allocation seen, inputs fetched, builder
//     started and exited, outputs published, outcome committed) only from
//     the node that ran the attempt, through the Backend, as in the admin
//     API's builds --json, so another node's page shows the builder's
//     committed start and finish and says where the rest is. They are rendered by html/template from embedded templates
//     and styles, complete without JavaScript; the one script, live.js,
//     keeps them current through /events.
//   - /events: Server-Sent Events of build state changes, membership
//     changes, log tails and a build's log. Each client has a bounded
//     buffer; a client that falls behind is dropped, never buffered
//     without bound.
//   - /api/v1/status, /api/v1/nodes, /api/v1/builds, /api/v1/builds/{id} and
//     /api/v1/builds/{id}/log: the admin API's objects as JSON (the log as
//     text, ?follow=1 to stream it). Every read takes ?index=N (and
//     ?wait=D) to wait until this node's replica has applied Raft index N,
//     and answers X-Tbfg-Index with the index it was read at.
//   - /metrics (served by the handler in Config.Metrics), /healthz and
//     /readyz.
//
// Every route answers GET and HEAD only, with a Content-Security-Policy that
// allows no inline script. Query parameters are bounded and checked; a bad
// one is a 400 naming it.
//
// The server reads the build queue from a Replica (a *scheduler.FSM), whose
// read index keeps each page at the cost of what it shows, and everything
// else from a Backend that the node implements (package webtest has an
// in-memory one). It never writes to either, and shows no secret: the
// Backend's objects carry none.
//
// It does not know how the node gets logs, members or Raft state, and owns
// no listener address: the node passes one to Serve.
package web
