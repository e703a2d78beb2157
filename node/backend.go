package node

import (
	"time"

	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/tbfg/tbfg-node/node/adminapi"
	"github.com/tbfg/tbfg-node/scheduler"
	"github.com/tbfg/tbfg-node/substitutes/pki"
)

// Node is the admin API's Backend, which package adminapi serves on the
// admin socket; Submit is in submit.go.
var _ adminapi.Backend = (*Node)(nil)

// Status reports the node's own view for the admin API.
func (n *Node) Status() adminapi.Status {
	st := adminapi.Status{State: n.state.Load().(string), DataDir: n.cfg.DataDir, Addresses: []string{}, NodeStatus: n.localStatus(),
		AppliedIndex: n.fsm.Index()}
	if !n.running() {
		return st
	}
	st.ID, st.Leader = n.mesh.ID(), n.mesh.Leader()
	st.RelayedBytes = n.mesh.RelayedBytes()
	st.ConnBytes = n.mesh.ConnBytes()
	if a := n.mesh.Addrs(); a != nil {
		st.Addresses = a
	}
	for _, m := range n.mesh.Members() {
		st.Members++
		if m.Suffrage == "voter" {
			st.Voters++
		}
	}
	return st
}

// Nodes lists the members of the mesh for the admin API.
func (n *Node) Nodes() ([]adminapi.NodeView, error) {
	if !n.running() {
		return nil, n.notReady()
	}
	self := n.mesh.ID()
	members := n.mesh.Members()
	views := make([]adminapi.NodeView, 0, len(members))
	for _, m := range members {
		views = append(views, adminapi.NewNodeView(m, self))
	}
	return views, nil
}

// Leave removes the node from the build queue and the mesh and then makes
// Run return.
func (n *Node) Leave(ctx context.Context) error {
	if !n.running() {
		return n.notReady()
	}
	if err := n.members.Leave(ctx); err != nil {
		return err
	}
	n.leaveOnce.Do(func() { close(n.left) })
	return nil
}

// Builds lists the builds q selects from this node's copy of the replicated
// state, in id order (or in the order of q.IDs).
func (n *Node) Builds(q adminapi.BuildQuery) ([]adminapi.BuildView, error) {
	if !n.running() {
		return nil, n.notReady()
	}
	keep, err := stateFilter(q.States)
	if err != nil {
		return nil, err
	}
	out := []adminapi.BuildView{}
	n.fsm.Read(func(st *scheduler.State) {
		if len(q.IDs) == 0 {
			for _, b := range st.Builds(scheduler.BuildID(q.After), q.Limit, keep) {
				out = append(out, n.buildView(b))
			}
			return
		}
		for _, id := range q.IDs {
			b, ok := st.Build(scheduler.BuildID(id))
			if !ok {
				err = noBuild(st, id, n.cfg.History)
				return
			}
			if keep == nil || keep(b.State) {
				out = append(out, n.buildView(b))
			}
		}
	})
	return out, err
}

// stateFilter turns state names into a filter; none keeps every build.
func stateFilter(names []string) (func(scheduler.BuildState) bool, error) {
	if len(names) == 0 {
		return nil, nil
	}
	byName := map[string]scheduler.BuildState{}
	for s := scheduler.BuildQueued; s.String() != "unknown"; s++ {
		byName[s.String()] = s
	}
	want := map[scheduler.BuildState]bool{}
	for _, name := range names {
		s, ok := byName[name]
		if !ok {
			return nil, fmt.Errorf("%w: state %q: want one of %s", adminapi.ErrBadRequest, name,
				strings.Join(slices.Sorted(maps.Keys(byName)), ", "))
		}
		want[s] = true
	}
	return func(s scheduler.BuildState) bool { return want[s] }, nil
}

// ACL returns the member keys of the replicated state. A key that does not
// parse is an error: every member registered its key through NodeJoined,
// which checks it.
func (n *Node) ACL() (adminapi.ACLView, error) {
	if !n.running() {
		return adminapi.ACLView{}, n.notReady()
	}
	var members []scheduler.MemberInfo
	n.fsm.Read(func(st *scheduler.State) { members = st.Members() })
	return aclView(members)
}

// aclView builds the ACL of members' keys, each key once.
func aclView(members []scheduler.MemberInfo) (adminapi.ACLView, error) {
	v := adminapi.ACLView{Members: []adminapi.ACLMember{}, NixKeys: []string{}}
	acl := &pki.ACL{}
	for _, m := range members {
		v.Members = append(v.Members, adminapi.ACLMember{ID: m.ID, Status: m.Status, Key: m.Key, NixKey: m.NixKey})
		if m.NixKey != "" && !slices.Contains(v.NixKeys, m.NixKey) {
			v.NixKeys = append(v.NixKeys, m.NixKey)
		}
		k, err := pki.ParsePublicKey([]byte(m.Key))
		if err != nil {
			return adminapi.ACLView{}, fmt.Errorf("key of member %s: %w", m.ID, err)
		}
		if !slices.Contains(acl.Keys, k) {
			acl.Keys = append(acl.Keys, k)
		}
	}
	v.ACL = string(acl.Marshal())
	return v, nil
}

// buildView is adminapi.NewBuildView with the node-local timeline of a build
// this node's agent ran.
func (n *Node) buildView(b scheduler.BuildInfo) adminapi.BuildView {
	v := adminapi.NewBuildView(b)
	if tl, ok := n.timeline(b.ID, b.Attempt); ok {
		v.Timeline = &tl
	}
	return v
}

// timeline is this node's agent's timeline of attempt attempt of build id,
// if the agent ran that attempt and still keeps it.
func (n *Node) timeline(id scheduler.BuildID, attempt int) (adminapi.Timeline, bool) {
	a := n.agent.Load()
	if a == nil {
		return adminapi.Timeline{}, false
	}
	tl, ok := a.Timeline(id)
	if !ok || tl.Attempt != attempt {
		return adminapi.Timeline{}, false
	}
	return adminapi.Timeline{Attempt: tl.Attempt, Seen: timePtr(tl.Seen), Fetched: timePtr(tl.Fetched),
		Exec: timePtr(tl.Exec), Exited: timePtr(tl.Exited), Published: timePtr(tl.Published),
		Committed: timePtr(tl.Committed)}, true
}

// timePtr is t in UTC, nil for the zero time.
func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}
