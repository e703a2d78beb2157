package local

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/tbfg/tbfg-node/store/nar"
	"github.com/tbfg/tbfg-node/store/nixbase32"
)

// ParseSum reads a NarHash in any of the forms Guix and Nix print it
// ("sha256:<nix-base32>" in narinfos, "sha256:<hex>", or the SRI form
// "sha256-<base64>" of `nix path-info --json`) and returns it with size as a
// nar.Sum.
func ParseSum(narHash string, size int64) (nar.Sum, error) {
	var digest []byte
	var err error
	switch {
	case strings.HasPrefix(narHash, "sha256-"):
		digest, err = base64.StdEncoding.DecodeString(narHash[len("sha256-"):])
	case strings.HasPrefix(narHash, "sha256:") && len(narHash) == len("sha256:")+2*sha256.Size:
		digest, err = hex.DecodeString(narHash[len("sha256:"):])
	case strings.HasPrefix(narHash, "sha256:"):
		digest, err = nixbase32.Decode(narHash[len("sha256:"):])
	default:
		return nar.Sum{}, fmt.Errorf("%w %q: want sha256:<hash>", ErrBadNarHash, narHash)
	}
	if err != nil || len(digest) != sha256.Size {
		return nar.Sum{}, fmt.Errorf("%w %q: not a SHA-256 digest", ErrBadNarHash, narHash)
	}
	if size < 0 {
		return nar.Sum{}, fmt.Errorf("%w: negative NarSize %d", ErrBadNarHash, size)
	}
	s := nar.Sum{Size: size}
	copy(s.SHA256[:], digest)
	return s, nil
}
