package node

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tbfg/tbfg-node/node/datadir"
)

func TestSigningKeysCreatedOnceAndKept(t *testing.T) {
	dir := t.TempDir()
	first, err := loadOrCreateKeys(dir, "build host:1")
	if err != nil {
		t.Fatal(err)
	}
	if want := "build-host-1-" + hex.EncodeToString(first.nix.Public().Key[:4]); first.nix.Name != want {
		t.Errorf("Nix key name %q, want %s", first.nix.Name, want)
	}
	other, err := loadOrCreateKeys(t.TempDir(), "build host:1")
	if err != nil || other.nix.Name == first.nix.Name {
		t.Errorf("two keys of one host name are both named %q (%v): Nix would trust only one", first.nix.Name, err)
	}
	again, err := loadOrCreateKeys(dir, "renamed")
	if err != nil {
		t.Fatal(err)
	}
	if again.guixPublic() != first.guixPublic() || again.nix.String() != first.nix.String() {
		t.Error("keys changed when loaded again")
	}
	checkKeys(t, dir)
	os.WriteFile(filepath.Join(dir, datadir.GuixSecretKeyFile), []byte("(not a key)"), 0o600)
	if _, err := loadOrCreateKeys(dir, "h"); err == nil || !strings.Contains(err.Error(), datadir.GuixSecretKeyFile) {
		t.Errorf("corrupt secret key: %v, want an error naming %s", err, datadir.GuixSecretKeyFile)
	}
}
