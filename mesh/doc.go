// Package mesh connects the nodes of a farm: the libp2p host (identity, private
// network secret, TCP; AutoNAT, circuit relay v2 between members and hole
// punching, for members behind NAT), discovery (mDNS and explicit peers), gossip of node
// status, Raft over libp2p streams, membership (bootstrap, join, voters and
// non-voters, voters chosen by health and by reachability from the leader,
// direct before relayed; removal of silent members, leave), forwarding of commands to
// the leader, leadership notifications, and byte streams between members for
// the node's data (NARs, logs, derivations), whose content it does not know.
//
// It takes the replicated state machine as a raft.FSM and never knows what the
// commands mean. DESIGN.md explains the join protocol and why a node with
// another cluster's Raft history is wiped rather than added.
package mesh
