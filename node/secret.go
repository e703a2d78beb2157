package node

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/tbfg/tbfg-node/internal/atomicfile"
	"github.com/tbfg/tbfg-node/node/datadir"
)

// SecretSize is the length of a mesh secret in bytes.
const SecretSize = 32

// GenerateSecret returns a new random mesh secret.
func GenerateSecret() ([]byte, error) {
	b := make([]byte, SecretSize)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("generate mesh secret: %w", err)
	}
	return b, nil
}

// ParseSecret decodes a secret written as 64 hexadecimal digits, ignoring
// surrounding white space.
func ParseSecret(text []byte) ([]byte, error) {
	text = bytes.TrimSpace(text)
	if len(text) != 2*SecretSize {
		return nil, fmt.Errorf("%w: want %d hexadecimal digits, got %d characters", ErrBadSecret, 2*SecretSize, len(text))
	}
	b := make([]byte, SecretSize)
	if _, err := hex.Decode(b, text); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSecret, err)
	}
	return b, nil
}

// FormatSecret is the text form of a secret.
func FormatSecret(secret []byte) string { return hex.EncodeToString(secret) }

// readSecretFile reads a secret file; a missing file is fs.ErrNotExist.
func readSecretFile(path string) ([]byte, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := ParseSecret(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// resolveSecret finds the secret for cfg's mode: a new one for init (which
// must find none), the given one for join (which must match any stored), the
// stored one for run. stored reports whether the data dir already holds it.
func resolveSecret(cfg Config) (secret []byte, stored bool, err error) {
	path := filepath.Join(cfg.DataDir, datadir.SecretFile)
	have, err := readSecretFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("read mesh secret: %w", err)
	}
	switch cfg.Mode {
	case ModeInit:
		if have != nil {
			return nil, false, fmt.Errorf("%w: %s exists; start the node with tbfg-node run --data-dir %s", ErrInitialised, path, cfg.DataDir)
		}
		s, err := GenerateSecret()
		return s, false, err
	case ModeJoin:
		return joinSecret(cfg, have)
	default:
		if have == nil {
			return nil, false, fmt.Errorf("%w: no %s; create a mesh with tbfg-node init or join one with tbfg-node join", ErrNotInitialised, path)
		}
		return have, true, nil
	}
}

// joinSecret reads the secret given to join and compares it with have.
func joinSecret(cfg Config, have []byte) ([]byte, bool, error) {
	given, err := ParseSecret([]byte(cfg.Secret))
	if cfg.SecretFile != "" {
		given, err = readSecretFile(cfg.SecretFile)
		if err != nil {
			err = fmt.Errorf("--secret-file: %w", err)
		}
	}
	if err != nil {
		return nil, false, err
	}
	if have != nil && !bytes.Equal(have, given) {
		return nil, false, fmt.Errorf("%w: %s differs from the secret given; use another --data-dir, or tbfg-node run for the old mesh",
			ErrSecretMismatch, filepath.Join(cfg.DataDir, datadir.SecretFile))
	}
	return given, have != nil, nil
}

// writeSecret stores secret in dir atomically with mode 0600.
func writeSecret(dir string, secret []byte) error {
	err := atomicfile.Write(filepath.Join(dir, datadir.SecretFile), []byte(FormatSecret(secret)+"\n"), 0o600)
	if err != nil {
		return fmt.Errorf("write mesh secret: %w", err)
	}
	return nil
}
