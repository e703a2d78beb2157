package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSigningKeysCreatedOnceAndKept(t *testing.T) {
	dir := t.TempDir()
	first, err := loadOrCreateKeys(dir, "build host:1")
	if err != nil {
		t.Fatal(err)
	}
	if first.nix.Name != "build-host-1-1" {
		t.Errorf("Nix key name %q, want build-host-1-1", first.nix.Name)
	}
	again, err := loadOrCreateKeys(dir, "renamed")
	if err != nil {
		t.Fatal(err)
	}
	if again.guixPublic() != first.guixPublic() || again.nix.String() != first.nix.String() {
		t.Error("keys changed when loaded again")
	}
	checkKeys(t, dir)
	os.WriteFile(filepath.Join(dir, GuixSecretKeyFile), []byte("(not a key)"), 0o600)
	if _, err := loadOrCreateKeys(dir, "h"); err == nil || !strings.Contains(err.Error(), GuixSecretKeyFile) {
		t.Errorf("corrupt secret key: %v, want an error naming %s", err, GuixSecretKeyFile)
	}
}
