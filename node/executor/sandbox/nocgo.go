//go:build !cgo

package sandbox

// The helper is C code run before the Go runtime starts (helper.c): this
// package needs cgo, and a build without it stops here rather than
// producing a node that cannot isolate builds.
var _ = the_build_sandbox_needs_cgo_build_with_CGO_ENABLED_1
