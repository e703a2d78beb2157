package node

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/tbfg/tbfg-node/scheduler"
	"github.com/tbfg/tbfg-node/substitutes/pki"
)

// ACLView is the answer to GET /v1/acl: the keys of every member registered
// in the build queue (members that left included: the narinfos they signed
// are still served), the ACL of them all in the format of /etc/guix/acl,
// and their Nix keys for Nix's trusted-public-keys. Scripts rely on the
// JSON names.
type ACLView struct {
	// ACL is the Guix ACL s-expression (pki.ACL.Marshal) of every key.
	ACL string `json:"acl"`
	// NixKeys are the members' Nix public keys (name:base64), each once, in
	// registration order: the value of trusted-public-keys in nix.conf.
	NixKeys []string `json:"nix_keys"`
	// Members are the registered members with their keys, in registration
	// order.
	Members []ACLMember `json:"members"`
}

// ACLMember is one member's entry in ACLView.
type ACLMember struct {
	ID     string `json:"id"`
	Status string `json:"status"`  // active, lost or left
	Key    string `json:"key"`     // Guix public key, as signing-key.pub holds it
	NixKey string `json:"nix_key"` // Nix public key, name:base64; "" if none
}

// ACL returns the member keys of the replicated state. A key that does not
// parse is an error: every member registered its key through NodeJoined,
// which checks it.
func (n *Node) ACL() (ACLView, error) {
	if !n.running() {
		return ACLView{}, n.notReady()
	}
	var members []scheduler.MemberInfo
	n.fsm.Read(func(st *scheduler.State) { members = st.Members() })
	return aclView(members)
}

// aclView builds the ACL of members' keys, each key once.
func aclView(members []scheduler.MemberInfo) (ACLView, error) {
	v := ACLView{Members: []ACLMember{}, NixKeys: []string{}}
	acl := &pki.ACL{}
	for _, m := range members {
		v.Members = append(v.Members, ACLMember{ID: m.ID, Status: m.Status, Key: m.Key, NixKey: m.NixKey})
		if m.NixKey != "" && !slices.Contains(v.NixKeys, m.NixKey) {
			v.NixKeys = append(v.NixKeys, m.NixKey)
		}
		k, err := pki.ParsePublicKey([]byte(m.Key))
		if err != nil {
			return ACLView{}, fmt.Errorf("key of member %s: %w", m.ID, err)
		}
		if !slices.Contains(acl.Keys, k) {
			acl.Keys = append(acl.Keys, k)
		}
	}
	v.ACL = string(acl.Marshal())
	return v, nil
}

func (a *adminServer) acl(w http.ResponseWriter, r *http.Request) {
	v, err := a.backend.ACL()
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// ACL returns the ACL of the mesh's member keys.
func (c *Client) ACL(ctx context.Context) (ACLView, error) {
	var v ACLView
	err := c.call(ctx, http.MethodGet, "/v1/acl", &v)
	return v, err
}
