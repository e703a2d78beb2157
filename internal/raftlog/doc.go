// Package raftlog bridges hashicorp/go-hclog, the logger hashicorp/raft takes,
// into a log/slog logger, so that Raft's logs land in the node's own log with
// the node's attributes.
//
// It formats nothing itself. The one policy it owns is for the messages Raft
// repeats many times a second while a peer is unreachable (failed heartbeats,
// failed pre-vote and vote requests, refused votes): they are downgraded from
// ERROR and printed at most once per window and peer.
package raftlog
