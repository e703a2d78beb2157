package web

import (
	"testing"

	"github.com/tbfg/tbfg-node/mesh"
	"github.com/tbfg/tbfg-node/node/adminapi"
	"github.com/tbfg/tbfg-node/scheduler"
)

// TestMeshRowsSlotsFromReplica: the slots in use of a member of the build
// queue are its builds in the replica, whatever its last gossip said; a
// member the queue does not know keeps its gossiped figure.
func TestMeshRowsSlotsFromReplica(t *testing.T) {
	nodes := []adminapi.NodeView{
		{ID: "a", NodeStatus: &mesh.NodeStatus{RunningBuilds: 2, MaxBuilds: 4}},
		{ID: "b", NodeStatus: &mesh.NodeStatus{RunningBuilds: 1, MaxBuilds: 2}},
	}
	members := []scheduler.MemberInfo{{ID: "a", Status: "active", Active: 0, MaxBuilds: 4}}
	rows := meshRows(nodes, members)
	if len(rows) != 2 || rows[0].Running != 0 || rows[0].Status != "active" || rows[1].Running != 1 {
		t.Fatalf("rows %+v: want a with 0 builds (the replica's), b with its gossiped 1", rows)
	}
}
