package nixkey

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tbfg/tbfg-node/internal/nixtest"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/nixbase32"
)

// seedKey is a fixed key so that signatures in this file are reproducible.
func seedKey(name string) *SecretKey {
	return &SecretKey{Name: name, Key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))}
}

func TestKeyFilesRoundTrip(t *testing.T) {
	k, err := Generate("cache.example.org-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := ParseSecretKey([]byte(k.String() + "\n"))
	if err != nil {
		t.Fatalf("ParseSecretKey(%q): %v", k.String(), err)
	}
	if sk.String() != k.String() {
		t.Errorf("secret key round trip: %q, want %q", sk.String(), k.String())
	}
	pk, err := ParsePublicKey([]byte(k.Public().String()))
	if err != nil {
		t.Fatal(err)
	}
	if pk.String() != k.Public().String() || pk.Name != "cache.example.org-1" {
		t.Errorf("public key round trip: %q", pk.String())
	}
}

func TestParseKeyErrors(t *testing.T) {
	good := seedKey("k")
	pub := base64.StdEncoding.EncodeToString(good.Public().Key)
	broken := bytes.Clone(good.Key)
	broken[40] ^= 1
	tests := []struct {
		name, text string
		secret     bool
		want       string
	}{
		{"no colon", "abc", false, "want name:base64"},
		{"empty name", ":" + pub, false, "must be non-empty"},
		{"space in name", "a b:" + pub, false, "without ':' or white space"},
		{"not base64", "k:!!!", false, "not base64"},
		{"short public", "k:" + pub[:20], false, "bytes, want 32"},
		{"public as secret", "k:" + pub, true, "bytes, want 64"},
		{"mismatched halves", "k:" + base64.StdEncoding.EncodeToString(broken), true, "does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.secret {
				_, err = ParseSecretKey([]byte(tt.text))
			} else {
				_, err = ParsePublicKey([]byte(tt.text))
			}
			if !errors.Is(err, ErrBadKey) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want ErrBadKey saying %q", err, tt.want)
			}
		})
	}
}

func TestParsePublicKeys(t *testing.T) {
	a, b := seedKey("a").Public(), seedKey("b").Public()
	keys, err := ParsePublicKeys([]byte(a.String() + "\n  " + b.String() + "\n"))
	if err != nil || len(keys) != 2 || keys[1].Name != "b" {
		t.Fatalf("ParsePublicKeys: %v, %v", keys, err)
	}
	if _, err := ParsePublicKeys([]byte(a.String() + " junk")); err == nil || !strings.Contains(err.Error(), "key 2") {
		t.Fatalf("bad second key: %v, want an error naming key 2", err)
	}
	if _, err := ParsePublicKeys([]byte(" \n")); err == nil {
		t.Fatal("empty input accepted")
	}
}

func TestFingerprint(t *testing.T) {
	refs := []string{"/gnu/store/zzz-b", "/gnu/store/aaa-a", "/gnu/store/zzz-b"}
	got := Fingerprint("/gnu/store/xyz-p", "sha256:0abc", 208, refs)
	want := "1;/gnu/store/xyz-p;sha256:0abc;208;/gnu/store/aaa-a,/gnu/store/zzz-b"
	if got != want {
		t.Errorf("Fingerprint = %q, want %q", got, want)
	}
	if refs[0] != "/gnu/store/zzz-b" {
		t.Error("Fingerprint reordered its argument")
	}
	if got := Fingerprint("/p", "h", 1, nil); got != "1;/p;h;1;" {
		t.Errorf("no references: %q", got)
	}
}

func TestSignVerify(t *testing.T) {
	k := seedKey("cache-1")
	other := &SecretKey{Name: "cache-1", Key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, 32))}
	renamed := seedKey("cache-2").Public()
	fp := "1;/gnu/store/x-p;sha256:abc;10;"
	sig := k.Sign(fp)
	tests := []struct {
		name   string
		fp     string
		sig    string
		keys   []PublicKey
		want   bool
		errMsg string
	}{
		{"valid", fp, sig, []PublicKey{renamed, k.Public()}, true, ""},
		{"changed fingerprint", fp + "x", sig, []PublicKey{k.Public()}, false, ""},
		{"same name, other key", fp, sig, []PublicKey{other.Public()}, false, ""},
		{"same key, other name", fp, sig, []PublicKey{renamed}, false, ""},
		{"no keys", fp, sig, nil, false, ""},
		{"truncated", fp, sig[:40], []PublicKey{k.Public()}, false, "bytes, want 64"},
		{"no name", fp, strings.TrimPrefix(sig, "cache-1"), []PublicKey{k.Public()}, false, "want name:base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := Verify(tt.fp, tt.sig, tt.keys)
			if ok != tt.want {
				t.Errorf("Verify = %v, want %v (err %v)", ok, tt.want, err)
			}
			if (err != nil) != (tt.errMsg != "") || err != nil && !strings.Contains(err.Error(), tt.errMsg) {
				t.Errorf("error %v, want one saying %q", err, tt.errMsg)
			}
		})
	}
}

// TestKeysAgainstNix checks key files both ways with Nix 2.8: Nix's secret keys
// parse here and give the public key Nix derives, and Nix derives from our
// secret key the public key we print.
func TestKeysAgainstNix(t *testing.T) {
	n := nixtest.New(t, store.GuixDir)
	secret := nixtest.Output(t, n.CmdNoStore("nix", "key", "generate-secret", "--key-name", "nix-made-1"))
	sk, err := ParseSecretKey([]byte(secret))
	if err != nil {
		t.Fatalf("Nix's secret key %q: %v", secret, err)
	}
	cmd := n.CmdNoStore("nix", "key", "convert-secret-to-public")
	cmd.Stdin = strings.NewReader(secret)
	if pub := nixtest.Output(t, cmd); pub != sk.Public().String() {
		t.Errorf("public key: Nix says %q, we say %q", pub, sk.Public().String())
	}
	ours, err := Generate("ours-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	cmd = n.CmdNoStore("nix", "key", "convert-secret-to-public")
	cmd.Stdin = strings.NewReader(ours.String())
	if pub := nixtest.Output(t, cmd); pub != ours.Public().String() {
		t.Errorf("public key of our secret: Nix says %q, we say %q", pub, ours.Public().String())
	}
}

// TestSignatureAgainstNix has `nix store sign` sign a store item with
// references using our key and checks that the signature is the one we make
// from our fingerprint (ed25519 is deterministic, so they must be equal).
func TestSignatureAgainstNix(t *testing.T) {
	n := nixtest.New(t, store.GuixDir)
	expr := `builtins.toFile "b" "${builtins.toFile "a" "x"} ${builtins.toFile "c" "y"}"`
	path := strings.Trim(n.Run(t, "nix-instantiate", "--eval", "--read-write-mode", "-E", expr), `"`)
	k, err := Generate("ours-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(n.Root, "key.sec")
	if err := os.WriteFile(keyFile, []byte(k.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	n.Run(t, "nix", "store", "sign", "--key-file", keyFile, path)
	var infos []struct {
		Path       string   `json:"path"`
		NarHash    string   `json:"narHash"`
		NarSize    uint64   `json:"narSize"`
		References []string `json:"references"`
		Signatures []string `json:"signatures"`
	}
	if err := json.Unmarshal([]byte(n.Run(t, "nix", "path-info", "--json", "--sigs", path)), &infos); err != nil || len(infos) != 1 {
		t.Fatalf("nix path-info: %v, %v", infos, err)
	}
	info := infos[0]
	if len(info.References) != 2 || len(info.Signatures) != 1 {
		t.Fatalf("path info %+v: want 2 references and 1 signature", info)
	}
	digest, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(info.NarHash, "sha256-"))
	if err != nil {
		t.Fatalf("narHash %q: %v", info.NarHash, err)
	}
	// Reverse the references so that the sorting is exercised.
	refs := []string{info.References[1], info.References[0]}
	fp := Fingerprint(info.Path, "sha256:"+nixbase32.Encode(digest), info.NarSize, refs)
	if got := k.Sign(fp); got != info.Signatures[0] {
		t.Errorf("signature of %q:\n ours %s\n Nix's %s", fp, got, info.Signatures[0])
	}
	if ok, err := Verify(fp, info.Signatures[0], []PublicKey{k.Public()}); !ok || err != nil {
		t.Errorf("Nix's signature does not verify: %v", err)
	}
}
