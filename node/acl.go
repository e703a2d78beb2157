package node

import (
	"fmt"
	"slices"

	"github.com/tbfg/tbfg-node/node/adminapi"
	"github.com/tbfg/tbfg-node/scheduler"
	"github.com/tbfg/tbfg-node/substitutes/pki"
)

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
