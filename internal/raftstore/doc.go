// Package raftstore is a Raft log and stable store (raft.LogStore and
// raft.StableStore) in one bbolt file.
//
// It exists because raft-boltdb v1 is built on the archived boltdb/bolt,
// whose unsafe pointer arithmetic fails Go's checkptr instrumentation (and
// so every `go test -race` run), while raft-boltdb/v2 does not build with
// hashicorp/raft v1.8.0. It owns only the on-disk layout of the log; what
// the entries mean belongs to Raft and the state machine.
package raftstore
