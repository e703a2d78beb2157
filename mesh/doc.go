// Package mesh connects the nodes of a farm: the libp2p host (identity, private
// network secret, TCP), discovery (mDNS and explicit peers), gossip of node
// status, Raft over libp2p streams, membership, and forwarding of commands to the
// leader.
//
// It takes the replicated state machine as a raft.FSM and never knows what the
// commands mean.
package mesh
