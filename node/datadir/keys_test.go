package datadir

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tbfg/tbfg-node/substitutes/nixkey"
	"github.com/tbfg/tbfg-node/substitutes/pki"
)

func TestSigningKeysCreatedOnceAndKept(t *testing.T) {
	dir := t.TempDir()
	first, err := LoadOrCreateKeys(dir, "build host:1")
	if err != nil {
		t.Fatal(err)
	}
	if want := "build-host-1-" + hex.EncodeToString(first.Nix.Public().Key[:4]); first.Nix.Name != want {
		t.Errorf("Nix key name %q, want %s", first.Nix.Name, want)
	}
	other, err := LoadOrCreateKeys(t.TempDir(), "build host:1")
	if err != nil || other.Nix.Name == first.Nix.Name {
		t.Errorf("two keys of one host name are both named %q (%v): Nix would trust only one", first.Nix.Name, err)
	}
	again, err := LoadOrCreateKeys(dir, "renamed")
	if err != nil {
		t.Fatal(err)
	}
	if again.GuixPublic() != first.GuixPublic() || again.Nix.String() != first.Nix.String() {
		t.Error("keys changed when loaded again")
	}
	checkKeys(t, dir)
	os.WriteFile(filepath.Join(dir, GuixSecretKeyFile), []byte("(not a key)"), 0o600)
	if _, err := LoadOrCreateKeys(dir, "h"); err == nil || !strings.Contains(err.Error(), GuixSecretKeyFile) {
		t.Errorf("corrupt secret key: %v, want an error naming %s", err, GuixSecretKeyFile)
	}
}

// checkKeys checks the signing keys the node created in dir.
func checkKeys(t *testing.T, dir string) {
	t.Helper()
	for name, mode := range map[string]os.FileMode{GuixSecretKeyFile: 0o600, NixSecretKeyFile: 0o600, GuixPublicKeyFile: 0o644, NixPublicKeyFile: 0o644} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v, %v; want mode %v", name, fi, err, mode)
		}
	}
	sec, _ := os.ReadFile(filepath.Join(dir, GuixSecretKeyFile))
	pub, _ := os.ReadFile(filepath.Join(dir, GuixPublicKeyFile))
	sk, err := pki.ParseSecretKey(sec)
	if err != nil || string(sk.Public.Marshal()) != string(pub) {
		t.Errorf("Guix key pair does not match: %v", err)
	}
	nsec, _ := os.ReadFile(filepath.Join(dir, NixSecretKeyFile))
	npub, _ := os.ReadFile(filepath.Join(dir, NixPublicKeyFile))
	nk, err := nixkey.ParseSecretKey(nsec)
	if err != nil || nk.Public().String()+"\n" != string(npub) {
		t.Errorf("Nix key pair does not match: %v", err)
	}
}
