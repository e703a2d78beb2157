package node

import (
	"slices"
	"strings"
	"testing"

	"github.com/tbfg/tbfg-node/node/adminapi"
	"github.com/tbfg/tbfg-node/scheduler"
	"github.com/tbfg/tbfg-node/substitutes/pki"
)

func TestACLView(t *testing.T) {
	k1, _ := pki.GenerateKey(nil)
	k2, _ := pki.GenerateKey(nil)
	key1, key2 := string(k1.Public.Marshal()), string(k2.Public.Marshal())
	v, err := aclView([]scheduler.MemberInfo{
		{ID: "a", Key: key1, NixKey: "a-1:AAAA", Status: "active"}, {ID: "b", Key: key2, Status: "left"},
		{ID: "c", Key: key1, NixKey: "a-1:AAAA", Status: "lost"}, {ID: "d", Key: key2, NixKey: "d-1:BBBB", Status: "active"},
	})
	if err != nil {
		t.Fatal(err)
	}
	acl, err := pki.ParseACL([]byte(v.ACL))
	if err != nil || !slices.Equal(acl.Keys, []pki.PublicKey{k1.Public, k2.Public}) {
		t.Fatalf("ACL %q, %v: want both keys once, in order", v.ACL, err)
	}
	if len(v.Members) != 4 || v.Members[1] != (adminapi.ACLMember{ID: "b", Status: "left", Key: key2}) ||
		v.Members[0].NixKey != "a-1:AAAA" {
		t.Errorf("members %+v", v.Members)
	}
	if !slices.Equal(v.NixKeys, []string{"a-1:AAAA", "d-1:BBBB"}) {
		t.Errorf("Nix keys %q: want each key once, in order, none empty", v.NixKeys)
	}
	empty, err := aclView(nil)
	if _, perr := pki.ParseACL([]byte(empty.ACL)); err != nil || perr != nil || empty.Members == nil {
		t.Errorf("empty ACL %+v: %v, %v", empty, err, perr)
	}
	if _, err := aclView([]scheduler.MemberInfo{{ID: "bad", Key: "(public-key"}}); err == nil || !strings.Contains(err.Error(), "member bad") {
		t.Errorf("bad key: %v, want an error naming the member", err)
	}
}
