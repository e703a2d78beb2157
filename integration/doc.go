// Package integration holds multi-host tests: real tbfg-node processes in
// network namespaces, fault injection, end-to-end scenarios and benchmarks.
//
// Each test builds the tbfg-node binary once (with the race detector when the
// tests run with it), creates a bridge with no uplink and one network
// namespace per host (internal/netns, addresses in 198.18.0.0/15), runs
// `tbfg-node` in each with its own data dir, logs every host's output to t.Log
// with a per-host prefix, and removes everything when it ends. mDNS traffic
// stays on that bridge. The one exception is BenchmarkNodeVsNginx, which runs
// a single node in the root namespace bound to 127.0.0.1 only, without mDNS,
// to measure what a LAN client gets from it against nginx (`make bench`).
//
// Tests need root and iproute2: they skip otherwise, and fail under CI=true.
// Run them with `make integration`.
package integration
