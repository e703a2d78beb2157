package narcache

import (
	"fmt"
	"strings"

	"github.com/tbfg/tbfg-node/store"
)

// maxCompressionLen bounds the compression part of a key.
const maxCompressionLen = 16

// Key returns the key of the NAR of the store item with base name base,
// compressed with compression ("none", "gzip", "zstd", ...).
func Key(compression, base string) string {
	return compression + "/" + base
}

// ValidKey checks that key is "<compression>/<store item base name>": a
// compression of 1 to 16 characters from [a-z0-9] starting with a letter, a
// slash, and a valid store item base name (<32-character nix-base32
// hash>-<name>). Such a key is a relative path of exactly two elements with
// no "." or ".." element, so it cannot leave the cache directory.
func ValidKey(key string) error {
	compression, base, ok := strings.Cut(key, "/")
	if !ok {
		return fmt.Errorf("%w %q: want <compression>/<hash>-<name>", ErrBadKey, key)
	}
	if err := validCompression(compression); err != nil {
		return fmt.Errorf("%w %q: %w", ErrBadKey, key, err)
	}
	if err := store.ValidateBase(base); err != nil {
		return fmt.Errorf("%w %q: store item: %w", ErrBadKey, key, err)
	}
	return nil
}

// validCompression checks the compression part of a key.
func validCompression(s string) error {
	if s == "" || len(s) > maxCompressionLen {
		return fmt.Errorf("compression %q must have 1 to %d characters", s, maxCompressionLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || i > 0 && '0' <= c && c <= '9') {
			return fmt.Errorf("compression %q: character %q at %d is not allowed", s, c, i)
		}
	}
	return nil
}
