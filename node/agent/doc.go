// Package agent runs the builds the leader allocates to this node.
//
// An Agent watches the replicated scheduler state for builds allocated to its
// node (FSM.WatchNode) and runs each one, up to MaxBuilds at once and, beyond
// the first, only while the machine's load is below LoadLimit:
//
//  1. commit Started (a build the node took with its last success is
//     running already; see Config.TakeNext);
//  2. make the .drv closure and every input valid in the local store, fetching
//     what is missing from the mesh through the Fetcher (failure: Failed with
//     reason missing-input, which re-queues the build);
//  3. build through the executor with the configured timeout and
//     max-silent-time, the builder's output going to the build's log in
//     the node's log directory (package buildlog: readable, and followed,
//     while the build runs; gzipped into place when it ends);
//  4. on success, sign a narinfo for each output (Guix Signature, and Nix Sig
//     with a Nix key) and commit Succeeded with them: the outputs are now
//     available in the mesh; on failure, commit Failed with the reason the
//     executor's error maps to (build-error, timeout, missing-input,
//     infrastructure).
//
// A final command that cannot be committed is kept and committed again on
// later wake-ups while the state still gives that attempt to the node; the
// build is not run again for it.
//
// A build taken away from the node (canceled, re-queued, allocated again) is
// stopped and nothing is committed for it. When the agent stops, running
// builds are stopped and reported as failed (infrastructure) so they re-queue
// at once elsewhere; final commits are bounded by CommitTimeout.
//
// On start, builds the state shows running on this node are orphans of an
// earlier run of the node (nothing runs here yet): they are reported as
// failed (infrastructure), so the scheduler re-queues them. Builds only
// allocated, never started, are simply run.
//
// Each build it ran to an end is reported to Config.Finished (the node's
// metrics) with its system, result and duration.
//
// The agent commits through an Applier (the mesh forwards to the leader and
// retries across leader changes) and knows nothing about the mesh, HTTP or
// how an executor builds.
package agent
