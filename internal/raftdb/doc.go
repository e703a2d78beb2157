// Package raftdb opens a node's Raft log and stable store: one
// hashicorp/raft-boltdb/v2 file (bbolt), the store Consul and Nomad run.
//
// It also owns the one-time upgrade of a file written by the node's first
// store. That store used the same bbolt layout (bucket "logs" keyed by the
// big-endian index, bucket "conf" holding the stable values as they are) but
// its own encoding of log entries, where raft-boltdb uses msgpack; Open
// rewrites such a file once, into a new file that replaces it only when it
// is complete and synced. It knows nothing of what the entries mean.
package raftdb
