package guixtest

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestPrivateDaemon starts a private guix-daemon and checks what it keeps
// to itself: `guix archive --authorize` run against it writes its ACL, not
// the machine's; it answers queries about the shared store; and it finds no
// substitutes without URLs.
func TestPrivateDaemon(t *testing.T) {
	Require(t)
	d := StartDaemon(t, DaemonOptions{})
	system, err := os.ReadFile(SystemACL)
	if err != nil {
		t.Fatal(err)
	}
	key := `(public-key (ecc (curve Ed25519) (q #8D156F295D24B0D9A86FA5741A1D8A36E9C93A1B3A51B6DC5A6B4D4C2A1D0E55#)))`
	cmd := d.Command(t.Context(), "archive", "--authorize")
	cmd.Stdin = strings.NewReader(key)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("guix archive --authorize: %v\n%s", err, out)
	}
	acl, err := os.ReadFile(d.ACLFile())
	if err != nil || !bytes.Contains(acl, []byte("8D156F295D24B0D9A86FA5741A1D8A36E9C93A1B3A51B6DC5A6B4D4C2A1D0E55")) {
		t.Errorf("private ACL %q, %v; want the key", acl, err)
	}
	if now, _ := os.ReadFile(SystemACL); !bytes.Equal(now, system) {
		t.Errorf("%s changed", SystemACL)
	}
	const missing = "/gnu/store/00000000000000000000000000000000-tbfg-missing"
	if infos := d.PathInfos(missing); len(infos) != 0 {
		t.Errorf("PathInfos of a missing path: %v", infos)
	}
	if got := d.Substitutable(nil, missing); len(got) != 0 {
		t.Errorf("Substitutable with no servers: %v", got)
	}
}
