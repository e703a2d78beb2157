package node

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tbfg/tbfg-node/node/datadir"
)

func TestResolveSecretByMode(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{DataDir: dir}
	if _, _, err := resolveSecret(cfg); !errors.Is(err, ErrNotInitialised) {
		t.Fatalf("run on empty dir: %v, want ErrNotInitialised", err)
	}
	cfg.Mode = ModeInit
	s, stored, err := resolveSecret(cfg)
	if err != nil || stored {
		t.Fatalf("init: stored %v, %v", stored, err)
	}
	if err := datadir.WriteSecret(dir, s); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, datadir.SecretFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mesh.secret: %v, %v; want mode 0600", fi, err)
	}
	if _, _, err := resolveSecret(cfg); !errors.Is(err, ErrInitialised) {
		t.Fatalf("init twice: %v, want ErrInitialised", err)
	}
	cfg.Mode, cfg.Secret = ModeJoin, datadir.FormatSecret(s)
	if got, stored, err := resolveSecret(cfg); err != nil || !stored || !bytes.Equal(got, s) {
		t.Fatalf("join with the same secret: %x, %v, %v", got, stored, err)
	}
	cfg.Secret = strings.Repeat("11", datadir.SecretSize)
	if _, _, err := resolveSecret(cfg); !errors.Is(err, ErrSecretMismatch) {
		t.Fatalf("join with another secret: %v, want ErrSecretMismatch", err)
	}
	file := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(file, []byte(datadir.FormatSecret(s)+"\n"), 0o600)
	cfg.Secret, cfg.SecretFile = "", file
	if got, _, err := resolveSecret(cfg); err != nil || !bytes.Equal(got, s) {
		t.Fatalf("join --secret-file: %x, %v", got, err)
	}
	cfg.Mode, cfg.SecretFile = ModeRun, ""
	if got, stored, err := resolveSecret(cfg); err != nil || !stored || !bytes.Equal(got, s) {
		t.Fatalf("run: %x, %v, %v", got, stored, err)
	}
}
