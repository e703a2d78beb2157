package store

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
)

// HashAlgo names a hash function the way derivations and fixed-output paths
// spell it.
type HashAlgo string

// The hash functions Guix and Nix accept for fixed-output items.
const (
	MD5    HashAlgo = "md5"
	SHA1   HashAlgo = "sha1"
	SHA256 HashAlgo = "sha256"
	SHA512 HashAlgo = "sha512"
)

// ParseHashAlgo checks that s names a supported hash algorithm.
func ParseHashAlgo(s string) (HashAlgo, error) {
	a := HashAlgo(s)
	if a.Size() == 0 {
		return "", fmt.Errorf("%w: unknown hash algorithm %q (want md5, sha1, sha256 or sha512)", ErrBadHash, s)
	}
	return a, nil
}

// Size is the digest length of a in bytes, or 0 for an unknown algorithm.
func (a HashAlgo) Size() int {
	switch a {
	case MD5:
		return md5.Size
	case SHA1:
		return sha1.Size
	case SHA256:
		return sha256.Size
	case SHA512:
		return sha512.Size
	}
	return 0
}

// New returns a running hash for a, or nil for an unknown algorithm.
func (a HashAlgo) New() hash.Hash {
	switch a {
	case MD5:
		return md5.New()
	case SHA1:
		return sha1.New()
	case SHA256:
		return sha256.New()
	case SHA512:
		return sha512.New()
	}
	return nil
}

// Hash is a digest together with the algorithm that made it.
type Hash struct {
	// Algo is the hash function that made Digest.
	Algo HashAlgo
	// Digest is the raw digest, Algo.Size() bytes long in a valid Hash.
	Digest []byte
}

// SHA256Of returns the SHA-256 hash of data.
func SHA256Of(data []byte) Hash {
	sum := sha256.Sum256(data)
	return Hash{Algo: SHA256, Digest: sum[:]}
}

// ParseHexHash reads a digest of algorithm algo written in lowercase
// hexadecimal, as the hash field of a fixed-output derivation holds it.
func ParseHexHash(algo HashAlgo, s string) (Hash, error) {
	size := algo.Size()
	if size == 0 {
		return Hash{}, fmt.Errorf("%w: unknown hash algorithm %q", ErrBadHash, algo)
	}
	if len(s) != 2*size {
		return Hash{}, fmt.Errorf("%w: %s digest has %d hex digits, want %d", ErrBadHash, algo, len(s), 2*size)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return Hash{}, fmt.Errorf("%w: %q at %d is not a lowercase hex digit", ErrBadHash, c, i)
		}
	}
	d, _ := hex.DecodeString(s) // checked above
	return Hash{Algo: algo, Digest: d}, nil
}

// Hex is the digest in lowercase hexadecimal.
func (h Hash) Hex() string { return hex.EncodeToString(h.Digest) }

// String is "<algo>:<hex>", the form that goes into store path computations.
func (h Hash) String() string { return string(h.Algo) + ":" + h.Hex() }

// valid reports whether h has a known algorithm and a digest of its size.
func (h Hash) valid() error {
	if h.Algo.Size() == 0 || len(h.Digest) != h.Algo.Size() {
		return fmt.Errorf("%w: %d-byte digest for algorithm %q", ErrBadHash, len(h.Digest), h.Algo)
	}
	return nil
}
