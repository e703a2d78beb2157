package datadir

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tbfg/tbfg-node/internal/atomicfile"
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

// ReadSecretFile reads a file holding a secret in its text form; a missing
// file is an error matching fs.ErrNotExist.
func ReadSecretFile(path string) ([]byte, error) {
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

// WriteSecret stores secret in its text form as SecretFile in the data dir
// dir, atomically, with mode 0600.
func WriteSecret(dir string, secret []byte) error {
	err := atomicfile.Write(filepath.Join(dir, SecretFile), []byte(FormatSecret(secret)+"\n"), 0o600)
	if err != nil {
		return fmt.Errorf("write mesh secret: %w", err)
	}
	return nil
}
