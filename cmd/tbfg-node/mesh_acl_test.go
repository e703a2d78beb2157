package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/poll"
	"github.com/tbfg/tbfg-node/node/adminapi"
	"github.com/tbfg/tbfg-node/node/datadir"
	"github.com/tbfg/tbfg-node/substitutes/pki"
)

// startCLINode runs `tbfg-node init` on loopback until the test ends and
// waits until it is running.
func startCLINode(t *testing.T, dir string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var out, errOut bytes.Buffer
	go func() {
		done <- run(ctx, &stdio{in: strings.NewReader(""), out: &out, err: &errOut}, []string{"init", "--data-dir", dir,
			"--no-mdns", "--listen", "127.0.0.1:0", "--substitute-listen", "127.0.0.1:0", "--raft-profile", "test",
			"--log-level", "warn"})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("node did not stop within 30s")
		}
	})
	c := adminapi.NewClient(dir)
	defer c.Close()
	err := poll.Until(30*time.Second, 50*time.Millisecond, func() error {
		st, err := c.Status(ctx)
		if err == nil && (st.State != adminapi.StateRunning || st.Leader != st.ID) {
			err = fmt.Errorf("status %+v", st)
		}
		if err != nil {
			return err
		}
		v, err := c.ACL(ctx)
		if err == nil && len(v.Members) != 1 {
			err = fmt.Errorf("%d members registered", len(v.Members))
		}
		return err
	})
	if err != nil {
		t.Fatalf("node not registered: %v; stderr:\n%s", err, errOut.String())
	}
}

// TestMeshACLAndAuthorize checks that acl prints a Guix ACL holding the
// node's key, and that authorize --acl merges it into an ACL file once,
// keeping the keys already there.
func TestMeshACLAndAuthorize(t *testing.T) {
	dir := t.TempDir()
	startCLINode(t, dir)
	pub, err := os.ReadFile(filepath.Join(dir, datadir.GuixPublicKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	key, err := pki.ParsePublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runMesh(t, "acl", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("acl: exit %d: %s", code, stderr)
	}
	acl, err := pki.ParseACL([]byte(stdout))
	if err != nil || !slices.Equal(acl.Keys, []pki.PublicKey{key}) {
		t.Fatalf("acl printed %q: %v; want an ACL of the node's key", stdout, err)
	}
	nixPub, err := os.ReadFile(filepath.Join(dir, datadir.NixPublicKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runMesh(t, "acl", "--nix", "--data-dir", dir)
	if want := "trusted-public-keys = " + string(nixPub); code != 0 || stdout != want {
		t.Fatalf("acl --nix: exit %d, %q, %s; want %q", code, stdout, stderr, want)
	}
	code, stdout, stderr = runMesh(t, "acl", "--json", "--data-dir", dir)
	var v adminapi.ACLView
	if code != 0 || json.Unmarshal([]byte(stdout), &v) != nil || len(v.Members) != 1 || v.Members[0].Key != string(pub) {
		t.Fatalf("acl --json: exit %d, %q, %s", code, stdout, stderr)
	}

	other, err := pki.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "acl")
	existing := &pki.ACL{Keys: []pki.PublicKey{other.Public}}
	if err := os.WriteFile(file, existing.Marshal(), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"1 of 1 member keys added", "0 of 1 member keys added"} {
		code, stdout, stderr = runMesh(t, "authorize", "--data-dir", dir, "--acl", file)
		if code != 0 || !strings.Contains(stdout, want) {
			t.Fatalf("authorize: exit %d, %q, %s; want %q", code, stdout, stderr, want)
		}
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	merged, err := pki.ParseACL(b)
	if err != nil || !slices.Equal(merged.Keys, []pki.PublicKey{other.Public, key}) {
		t.Fatalf("merged ACL %q: %v; want the old key then the node's", b, err)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("ACL file mode %v, %v; want 0600 kept", fi.Mode(), err)
	}
}

// TestMeshAuthorizeRunsGuix checks that without --acl, authorize hands each
// member key missing from the ACL guix uses ($GUIX_CONFIGURATION_DIRECTORY/acl)
// to `guix archive --authorize` on its standard input, one key per call as
// Guix takes them, and none that is there already. guix is a script here
// that records its calls; integration's TestGuixClientOfMesh runs the real
// one.
func TestMeshAuthorizeRunsGuix(t *testing.T) {
	dir := t.TempDir()
	startCLINode(t, dir)
	bin, record, conf := t.TempDir(), filepath.Join(t.TempDir(), "calls"), t.TempDir()
	script := "#!/bin/sh\necho \"$@\" >> " + record + "\ncat >> " + record + "\necho >> " + record + "\n"
	if err := os.WriteFile(filepath.Join(bin, "guix"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	t.Setenv("GUIX_CONFIGURATION_DIRECTORY", conf)
	code, stdout, stderr := runMesh(t, "authorize", "--data-dir", dir)
	if code != 0 || !strings.Contains(stdout, "1 of 1 member keys authorized with guix archive --authorize") {
		t.Fatalf("authorize: exit %d, %q, %s", code, stdout, stderr)
	}
	pub, err := os.ReadFile(filepath.Join(dir, datadir.GuixPublicKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(record)
	if want := "archive --authorize\n" + string(pub) + "\n"; err != nil || string(got) != want {
		t.Errorf("guix called with %q, %v; want %q", got, err, want)
	}
	key, err := pki.ParsePublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	acl := &pki.ACL{Keys: []pki.PublicKey{key}}
	if err := os.WriteFile(filepath.Join(conf, "acl"), acl.Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runMesh(t, "authorize", "--data-dir", dir)
	if code != 0 || !strings.Contains(stdout, "0 of 1 member keys authorized") {
		t.Fatalf("authorize again: exit %d, %q, %s", code, stdout, stderr)
	}
	if again, _ := os.ReadFile(record); string(again) != string(got) {
		t.Errorf("guix called again for a key already in the ACL: %q", again[len(got):])
	}
}

// TestMemberKeys checks which keys authorize adds and which --prune removes.
func TestMemberKeys(t *testing.T) {
	var k [3]pki.PublicKey
	var text [3]string
	for i := range k {
		sk, err := pki.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		k[i], text[i] = sk.Public, string(sk.Public.Marshal())
	}
	v := adminapi.ACLView{Members: []adminapi.ACLMember{
		{ID: "a", Status: "active", Key: text[0]},
		{ID: "b", Status: "left", Key: text[1]},
		{ID: "c", Status: "lost", Key: text[2]},
		{ID: "d", Status: "left", Key: text[0]}, // a's key, also used by a member that left
		{ID: "e", Status: "left", Key: text[1]},
	}}
	current, left, err := memberKeys(v)
	if err != nil || !slices.Equal(current, []pki.PublicKey{k[0], k[2]}) || !slices.Equal(left, []pki.PublicKey{k[1]}) {
		t.Errorf("memberKeys = %v, %v, %v; want [a c], [b]", current, left, err)
	}
	v.Members = append(v.Members, adminapi.ACLMember{ID: "f", Status: "active", Key: "(public-key)"})
	if _, _, err := memberKeys(v); err == nil || !strings.Contains(err.Error(), "member f") {
		t.Errorf("memberKeys with a bad key: %v, want an error naming member f", err)
	}
}

// TestPruneLeft checks that --prune removes exactly the keys of members that
// left, keeps the file's mode, and leaves the file alone when there is
// nothing to remove or without --prune.
func TestPruneLeft(t *testing.T) {
	var keys []pki.PublicKey
	for range 3 {
		sk, err := pki.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, sk.Public)
	}
	file := filepath.Join(t.TempDir(), "acl")
	orig := (&pki.ACL{Keys: keys}).Marshal()
	if err := os.WriteFile(file, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		left  []pki.PublicKey
		prune bool
		want  []pki.PublicKey
		out   string
	}{
		{"nothing left", nil, true, keys, ""},
		{"no prune", keys[1:2], false, keys, "1 key of members that left the mesh still in"},
		{"prune", keys[1:2], true, []pki.PublicKey{keys[0], keys[2]}, "1 key of members that left the mesh removed from"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			acl, err := readACLFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := pruneLeft(&out, file, acl, tt.left, tt.prune); err != nil {
				t.Fatal(err)
			}
			after, err := readACLFile(file)
			if err != nil || !slices.Equal(after.Keys, tt.want) || !strings.Contains(out.String(), tt.out) {
				t.Errorf("ACL %v, %v, said %q; want %v, saying %q", after.Keys, err, out.String(), tt.want, tt.out)
			}
			if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("mode %v, %v; want 0600", fi.Mode(), err)
			}
		})
	}
}

// TestAuthorizeFrom checks that authorize --from takes the members from
// what acl --json printed, from a file or standard input, without a local
// node, and refuses what is not that.
func TestAuthorizeFrom(t *testing.T) {
	sk, err := pki.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	left, err := pki.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	v := adminapi.ACLView{Members: []adminapi.ACLMember{
		{ID: "a", Status: "active", Key: string(sk.Public.Marshal())},
		{ID: "b", Status: "left", Key: string(left.Public.Marshal())},
	}}
	members, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	from := filepath.Join(dir, "members.json")
	if err := os.WriteFile(from, members, 0o644); err != nil {
		t.Fatal(err)
	}
	noNode := filepath.Join(dir, "no-node")
	acl := filepath.Join(dir, "acl")
	code, stdout, stderr := runMesh(t, "authorize", "--data-dir", noNode, "--from", from, "--acl", acl)
	if code != 0 || !strings.Contains(stdout, "1 of 1 member keys added") {
		t.Fatalf("authorize --from FILE: exit %d, %q, %s", code, stdout, stderr)
	}
	var out, errOut bytes.Buffer
	code = run(context.Background(), &stdio{in: bytes.NewReader(members), out: &out, err: &errOut},
		[]string{"authorize", "--data-dir", noNode, "--from", "-", "--acl", acl})
	if code != 0 || !strings.Contains(out.String(), "0 of 1 member keys added") {
		t.Fatalf("authorize --from -: exit %d, %q, %s", code, out.String(), errOut.String())
	}
	if got, err := readACLFile(acl); err != nil || !slices.Equal(got.Keys, []pki.PublicKey{sk.Public}) {
		t.Errorf("ACL %v, %v; want the active member's key only", got, err)
	}
	for name, text := range map[string]string{"not JSON": "(acl)", "no members": `{"members": []}`} {
		bad := filepath.Join(dir, "bad.json")
		if err := os.WriteFile(bad, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if code, _, stderr := runMesh(t, "authorize", "--data-dir", noNode, "--from", bad, "--acl", acl); code != 1 || !strings.Contains(stderr, "--from") {
			t.Errorf("%s: exit %d, %s; want an error naming --from", name, code, stderr)
		}
	}
}
