// Package node is the composition root of one running tbfg-node: configuration,
// the data directory, start and stop order of the components, and the local admin
// API used by the command-line interface.
package node
