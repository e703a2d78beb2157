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

func TestSecretRoundTrip(t *testing.T) {
	s, err := GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	text := FormatSecret(s)
	if len(text) != 64 || strings.ToLower(text) != text {
		t.Fatalf("FormatSecret = %q, want 64 lowercase hex digits", text)
	}
	got, err := ParseSecret([]byte("  " + strings.ToUpper(text) + "\n"))
	if err != nil || !bytes.Equal(got, s) {
		t.Fatalf("ParseSecret(FormatSecret(s)) = %x, %v; want %x", got, err, s)
	}
}

func TestParseSecretErrors(t *testing.T) {
	for _, in := range []string{"", "abc", strings.Repeat("g", 64), strings.Repeat("a", 66), strings.Repeat("ab", 31) + " a"} {
		if _, err := ParseSecret([]byte(in)); !errors.Is(err, ErrBadSecret) {
			t.Errorf("ParseSecret(%q) = %v, want ErrBadSecret", in, err)
		}
	}
}

func FuzzParseSecret(f *testing.F) {
	f.Add([]byte(strings.Repeat("0f", 32)))
	f.Add([]byte(" \n"))
	f.Add([]byte(strings.Repeat("é", 32)))
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := ParseSecret(in)
		if err != nil {
			return
		}
		if len(s) != SecretSize {
			t.Fatalf("secret of %d bytes", len(s))
		}
		if again, err := ParseSecret([]byte(FormatSecret(s))); err != nil || !bytes.Equal(again, s) {
			t.Fatalf("round trip of %x: %x, %v", s, again, err)
		}
	})
}

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
	if err := writeSecret(dir, s); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, datadir.SecretFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mesh.secret: %v, %v; want mode 0600", fi, err)
	}
	if _, _, err := resolveSecret(cfg); !errors.Is(err, ErrInitialised) {
		t.Fatalf("init twice: %v, want ErrInitialised", err)
	}
	cfg.Mode, cfg.Secret = ModeJoin, FormatSecret(s)
	if got, stored, err := resolveSecret(cfg); err != nil || !stored || !bytes.Equal(got, s) {
		t.Fatalf("join with the same secret: %x, %v, %v", got, stored, err)
	}
	cfg.Secret = strings.Repeat("11", SecretSize)
	if _, _, err := resolveSecret(cfg); !errors.Is(err, ErrSecretMismatch) {
		t.Fatalf("join with another secret: %v, want ErrSecretMismatch", err)
	}
	file := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(file, []byte(FormatSecret(s)+"\n"), 0o600)
	cfg.Secret, cfg.SecretFile = "", file
	if got, _, err := resolveSecret(cfg); err != nil || !bytes.Equal(got, s) {
		t.Fatalf("join --secret-file: %x, %v", got, err)
	}
	cfg.Mode, cfg.SecretFile = ModeRun, ""
	if got, stored, err := resolveSecret(cfg); err != nil || !stored || !bytes.Equal(got, s) {
		t.Fatalf("run: %x, %v, %v", got, stored, err)
	}
}
