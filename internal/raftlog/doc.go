// Package raftlog bridges hashicorp/go-hclog, the logger hashicorp/raft takes,
// into a log/slog logger, so that Raft's logs land in the node's own log with
// the node's attributes.
//
// It owns nothing else: it neither filters nor formats records itself.
package raftlog
