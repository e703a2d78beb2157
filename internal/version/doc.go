// Package version says which tbfg-node this is: a release version, the git
// commit it was built from and the Go toolchain that built it. The Makefile
// stamps Version and Commit with -ldflags; a plain `go build` falls back to
// what the Go toolchain recorded (the module version and vcs.revision).
//
// It knows nothing of the mesh; the mesh gossips Version, and the node uses
// the format numbers elsewhere to refuse what it cannot read.
package version
