package node

import (
	"time"

	"github.com/tbfg/tbfg-node/mesh"
)

// States of a node, as Status.State reports them.
const (
	StateStarting = "starting" // admin API up, mesh starting or joining
	StateRunning  = "running"  // member of the mesh
	StateStopping = "stopping" // shutting down
)

// Status is this node's answer to GET /v1/status. Scripts rely on the JSON
// names; add fields, never rename them.
type Status struct {
	// ID is this node's peer ID, empty until the mesh has started.
	ID string `json:"id"`
	// Leader is the leader's peer ID, empty if none is known.
	Leader string `json:"leader"`
	// State is starting, running or stopping.
	State string `json:"state"`
	// Addresses are the multiaddrs this node announces.
	Addresses []string `json:"addresses"`
	// Members and Voters count the Raft configuration as this node sees it.
	Members int `json:"members"`
	Voters  int `json:"voters"`
	// DataDir is the node's data directory.
	DataDir string `json:"data_dir"`
	// The local status this node gossips, flattened into the object.
	mesh.NodeStatus
}

// NodeView is one member in the answer to GET /v1/nodes: its place in the Raft
// configuration and, flattened, the last status it gossiped (absent if none
// was heard yet). Scripts rely on the JSON names.
type NodeView struct {
	ID        string     `json:"id"`
	Addresses []string   `json:"addresses"`
	Suffrage  string     `json:"suffrage"` // "voter" or "nonvoter"
	Leader    bool       `json:"leader"`
	Self      bool       `json:"self"`
	LastSeen  *time.Time `json:"last_seen"` // null if never heard by gossip
	*mesh.NodeStatus
}

// LeaveResult is the answer to POST /v1/leave.
type LeaveResult struct {
	ID string `json:"id"`
}

// apiError is the body of every error answer.
type apiError struct {
	Error string `json:"error"`
}

// nodeView converts a mesh member for the API.
func nodeView(m mesh.Member, self string) NodeView {
	v := NodeView{
		ID:         m.ID,
		Addresses:  m.Addresses,
		Suffrage:   m.Suffrage,
		Leader:     m.Leader,
		Self:       m.ID == self,
		NodeStatus: m.Status,
	}
	if v.Addresses == nil {
		v.Addresses = []string{}
	}
	if !m.LastSeen.IsZero() {
		t := m.LastSeen.UTC()
		v.LastSeen = &t
	}
	return v
}
