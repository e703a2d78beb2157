// Package drvgraph generates graphs of derivations for tests and the demo:
// a deep "toolchain" chain, wide leaves that build on it, tops that combine
// leaves, optionally some slow derivations and one that fails on purpose
// with a dependent that can never build.
//
// Every derivation is exact: its output paths and its own .drv store path
// are computed by store/derivation for a chosen logical store directory
// (/gnu/store unless told otherwise), so a daemon or a node accepts it as
// if Guix had written it. Graph.Write lays the .drv files out like a copy of
// a store, each under its store base name <hash>-<name>.drv.
//
// Builders are `/bin/sh -c SCRIPT` scripts that need no more than a
// busybox-compatible shell: echo, cat, mkdir and sleep. Each output is a
// directory naming the outputs of its inputs, so its references are exactly
// its inputs' outputs and copying a closure has something to copy.
//
// It does not build or submit anything.
package drvgraph
