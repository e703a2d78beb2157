// Package sandbox runs one builder in a sandbox it cannot get out of: an
// unprivileged uid in user namespaces of its own, no network unless asked
// for, a private file system showing only the store items it may read
// (read-only) and the directory where it writes its outputs, a fresh /proc,
// a minimal /dev and an /etc holding passwd, group and hosts, and its whole
// process tree bounded by a timeout, a max-silent time, a process limit and,
// where cgroup v2 offers it, a memory limit. It is the isolation of the
// builtin executor, which knows what to build; this package knows how to
// run a program so that it cannot touch the node.
//
// New checks once what the kernel allows, by running a probe through every
// step a build takes, and fails with the step the kernel refused: a node
// that cannot isolate builds says so at start and builds nothing, rather
// than building with less isolation. Run runs one build.
//
// The namespaces are set up by the node's own binary, executed again with
// the build's specification on a descriptor: the init function of this
// package recognises that (and that it is PID 1 of a new PID namespace) and
// never returns, so any program linking the package, the node or a test
// binary, is its own helper. DESIGN.md in the parent directory explains the
// layers and the threat model.
//
// It does not know about derivations, the store's database or the mesh.
package sandbox
