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
// the build's specification on a descriptor: a C constructor of this
// package (helper.c) recognises that (and that it is PID 1 of a new PID
// namespace) before the Go runtime starts, sets up the sandbox, runs the
// builder and exits, so any program linking the package, the node or a
// test binary, is its own helper, and a helper costs an exec and a few
// hundred system calls rather than the start of a Go program. The package
// therefore needs cgo: with CGO_ENABLED=0 (also Go's default when
// cross-compiling without a C cross-compiler as CC) it does not compile
// (nocgo.go says why), rather than giving a node that cannot isolate
// builds. There is
// no second implementation of the helper in Go. DESIGN.md in the parent
// directory explains the layers, the threat model and what a build costs.
//
// It does not know about derivations, the store's database or the mesh.
package sandbox
