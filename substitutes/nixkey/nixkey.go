package nixkey

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Errors wrapped by key and signature parsing.
var (
	// ErrBadKey is returned for a key that is not `name:base64` with a
	// non-empty name and a key of the right length.
	ErrBadKey = errors.New("invalid Nix key")
	// ErrBadSignature is returned for a signature that is not `name:base64`
	// with a non-empty name and a 64-byte ed25519 signature.
	ErrBadSignature = errors.New("invalid Nix signature")
)

// PublicKey is a Nix public key: a name (usually the cache's host name plus a
// number, e.g. cache.example.org-1) and a 32-byte ed25519 key.
type PublicKey struct {
	// Name is the key's name; a signature names the key that made it.
	Name string
	// Key is the 32-byte ed25519 public key.
	Key ed25519.PublicKey
}

// SecretKey is a Nix secret key: a name and a 64-byte ed25519 private key
// (seed followed by public key, libsodium's layout).
type SecretKey struct {
	// Name is the key's name, written into every signature it makes.
	Name string
	// Key is the 64-byte ed25519 private key.
	Key ed25519.PrivateKey
}

// Generate makes a new key pair named name, reading randomness from rand (nil
// means crypto/rand).
func Generate(name string, rand io.Reader) (*SecretKey, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	_, priv, err := ed25519.GenerateKey(rand)
	if err != nil {
		return nil, fmt.Errorf("generate ed25519 key: %w", err)
	}
	return &SecretKey{Name: name, Key: priv}, nil
}

// ParseSecretKey reads a secret key in the format of `nix key
// generate-secret` (name:base64 of 64 bytes). Surrounding white space is
// ignored.
func ParseSecretKey(data []byte) (*SecretKey, error) {
	name, raw, err := splitKey(data, ed25519.PrivateKeySize)
	if err != nil {
		return nil, err
	}
	priv := ed25519.PrivateKey(raw)
	// A key whose second half is not the public key of its seed would make
	// signatures that never verify; Go's Sign trusts that half.
	if want := ed25519.NewKeyFromSeed(priv.Seed()); !bytes.Equal(want, priv) {
		return nil, fmt.Errorf("%w %q: public half does not match the secret seed", ErrBadKey, name)
	}
	return &SecretKey{Name: name, Key: priv}, nil
}

// ParsePublicKey reads a public key in the format of `nix key
// convert-secret-to-public` (name:base64 of 32 bytes). Surrounding white
// space is ignored.
func ParsePublicKey(data []byte) (PublicKey, error) {
	name, raw, err := splitKey(data, ed25519.PublicKeySize)
	if err != nil {
		return PublicKey{}, err
	}
	return PublicKey{Name: name, Key: ed25519.PublicKey(raw)}, nil
}

// ParsePublicKeys reads white-space-separated public keys, like the value of
// Nix's trusted-public-keys setting or a file with one key per line.
func ParsePublicKeys(data []byte) ([]PublicKey, error) {
	var keys []PublicKey
	for i, f := range strings.Fields(string(data)) {
		k, err := ParsePublicKey([]byte(f))
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no key found", ErrBadKey)
	}
	return keys, nil
}

func splitKey(data []byte, size int) (string, []byte, error) {
	s := strings.TrimSpace(string(data))
	name, b64, ok := strings.Cut(s, ":")
	if !ok {
		return "", nil, fmt.Errorf("%w: want name:base64", ErrBadKey)
	}
	if err := checkName(name); err != nil {
		return "", nil, err
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", nil, fmt.Errorf("%w %q: key is not base64: %w", ErrBadKey, name, err)
	}
	if len(raw) != size {
		return "", nil, fmt.Errorf("%w %q: key is %d bytes, want %d", ErrBadKey, name, len(raw), size)
	}
	return name, raw, nil
}

func checkName(name string) error {
	if name == "" || strings.ContainsAny(name, ": \t\r\n") {
		return fmt.Errorf("%w: name %q must be non-empty, without ':' or white space", ErrBadKey, name)
	}
	return nil
}

// Public returns the public half of k.
func (k *SecretKey) Public() PublicKey {
	return PublicKey{Name: k.Name, Key: k.Key.Public().(ed25519.PublicKey)}
}

// String returns k in Nix's file format, name:base64, without a newline.
func (k *SecretKey) String() string {
	return k.Name + ":" + base64.StdEncoding.EncodeToString(k.Key)
}

// String returns k in Nix's file format, name:base64, without a newline.
func (k PublicKey) String() string {
	return k.Name + ":" + base64.StdEncoding.EncodeToString(k.Key)
}

// Fingerprint is the text Nix signs for a store item: `1;<path>;<narHash>;
// <narSize>;<references>`, where narHash is `sha256:<nix-base32>` and the
// references are full store paths, sorted and without duplicates (Nix keeps
// them in a set) and joined by commas. refs is not modified.
func Fingerprint(path, narHash string, narSize uint64, refs []string) string {
	sorted := slices.Clone(refs)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	return "1;" + path + ";" + narHash + ";" + strconv.FormatUint(narSize, 10) + ";" + strings.Join(sorted, ",")
}

// Sign signs fingerprint and returns the signature as Nix writes it in a
// narinfo's Sig field: name:base64.
func (k *SecretKey) Sign(fingerprint string) string {
	sig := ed25519.Sign(k.Key, []byte(fingerprint))
	return k.Name + ":" + base64.StdEncoding.EncodeToString(sig)
}

// ParseSignature splits a Sig value into the key name and the 64-byte
// signature.
func ParseSignature(sig string) (name string, raw []byte, err error) {
	name, b64, ok := strings.Cut(sig, ":")
	if !ok || name == "" {
		return "", nil, fmt.Errorf("%w %q: want name:base64", ErrBadSignature, sig)
	}
	raw, err = base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", nil, fmt.Errorf("%w from %q: not base64: %w", ErrBadSignature, name, err)
	}
	if len(raw) != ed25519.SignatureSize {
		return "", nil, fmt.Errorf("%w from %q: %d bytes, want %d", ErrBadSignature, name, len(raw), ed25519.SignatureSize)
	}
	return name, raw, nil
}

// Verify reports whether sig (name:base64) is a valid signature of
// fingerprint by one of keys. As in Nix, only keys whose name equals the
// signature's name are tried. A malformed signature is an error.
func Verify(fingerprint, sig string, keys []PublicKey) (bool, error) {
	name, raw, err := ParseSignature(sig)
	if err != nil {
		return false, err
	}
	for _, k := range keys {
		if k.Name == name && len(k.Key) == ed25519.PublicKeySize &&
			ed25519.Verify(k.Key, []byte(fingerprint), raw) {
			return true, nil
		}
	}
	return false, nil
}

// Trusted reports whether keys holds a key named name.
func Trusted(name string, keys []PublicKey) bool {
	return slices.ContainsFunc(keys, func(k PublicKey) bool { return k.Name == name })
}
