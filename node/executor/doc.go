// Package executor runs the builds a node is allocated: one interface,
// Executor, and its implementations.
//
// Builtin needs no daemon. It checks that every input of the derivation is
// valid in the node's own store (store/local), makes a fresh build directory,
// and runs the builder with exactly the derivation's environment plus the
// variables Nix and Guix set (NIX_BUILD_TOP, TMPDIR, HOME=/homeless-shelter,
// NIX_STORE, NIX_BUILD_CORES, …), in the sandbox of package sandbox: an
// unprivileged uid in user namespaces of its own, no network unless the
// derivation is fixed-output, a root showing only its input closure
// (read-only) at the logical store directory (e.g. /gnu/store), its build
// directory, a fresh /proc, a minimal /dev and /etc; the host's own
// /gnu/store is never touched, and two nodes on one machine keep separate
// stores. Timeout and max-silent-time kill the whole build. On success the
// outputs are moved into the store, canonicalised, scanned for references
// to the input closure and to each other, and registered; on failure they
// are removed. DESIGN.md describes the sandbox and its threat model.
//
// Nix has Nix itself build instead (nix-store --realise against any Nix store URI,
// e.g. a chroot store with a /gnu/store layout): it imports the missing .drv
// closure from the local store with nix-store --import, passes timeout and
// max-silent-time on, and reads outputs, NarHash, references and deriver
// from `nix path-info --json`.
//
// Guix has the local guix-daemon build, through `guix build --no-grafts
// --no-offload` with the node's own substitute server first in
// --substitute-urls: the daemon substitutes a missing .drv closure and the
// inputs built elsewhere from the mesh, which it accepts only once the
// mesh's keys are authorized (`tbfg-node authorize`). It reads references
// and derivers from the daemon (`guix gc --references`, `--derivers`) and
// hashes the outputs' NARs itself from the store, which everyone may read.
//
// All three map failures to the same errors, and IsBuildFailure tells
// failures of the derivation from failures of the node. The two that drive
// a daemon's client share its plumbing (client.go): the log streamed from
// the client's error output, the limits passed to the daemon with a
// backstop in case it does not enforce them, and the reading of its error
// messages.
//
// The package knows nothing about the scheduler or the mesh: the agent loop in
// package node calls Build and publishes the results.
package executor
