// Command gengraph writes the derivation graph of `make demo` as .drv files
// into a directory laid out like a copy of a store, using internal/drvgraph,
// and lists what it wrote for the demo script.
//
// Usage:
//
//	gengraph [FLAGS] DIR
//
// Each line of its output is a tab-separated kind (toolchain, leaf, top,
// broken or needs-broken), the .drv file's name in DIR, and the store path
// of the derivation's output, inputs before their dependents.
package main
