// Package integration holds multi-host tests: real tbfg-node processes in network
// namespaces, fault injection, end-to-end scenarios and benchmarks. Tests that
// need root skip outside CI with a message saying how to run them.
package integration
