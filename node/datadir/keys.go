package datadir

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/tbfg/tbfg-node/internal/atomicfile"
	"github.com/tbfg/tbfg-node/substitutes/nixkey"
	"github.com/tbfg/tbfg-node/substitutes/pki"
)

// Keys are the node's keys for signing the narinfos it publishes.
type Keys struct {
	Guix *pki.SecretKey
	Nix  *nixkey.SecretKey
}

// GuixPublic is the Guix public key as signing-key.pub holds it.
func (k *Keys) GuixPublic() string { return string(k.Guix.Public.Marshal()) }

// LoadOrCreateKeys reads the node's signing keys from the data dir dir,
// creating a pair that is absent: a Guix key as `guix archive
// --generate-key` writes it, and a Nix key named after the host (`nix key
// generate-secret --key-name`).
func LoadOrCreateKeys(dir, hostname string) (*Keys, error) {
	var k Keys
	var err error
	k.Guix, err = loadOrCreate(dir, GuixSecretKeyFile, GuixPublicKeyFile,
		func(b []byte) (*pki.SecretKey, error) { return pki.ParseSecretKey(b) },
		func() (*pki.SecretKey, []byte, []byte, error) {
			sk, err := pki.GenerateKey(nil)
			if err != nil {
				return nil, nil, nil, err
			}
			return sk, sk.Marshal(), sk.Public.Marshal(), nil
		})
	if err != nil {
		return nil, err
	}
	k.Nix, err = loadOrCreate(dir, NixSecretKeyFile, NixPublicKeyFile, nixkey.ParseSecretKey,
		func() (*nixkey.SecretKey, []byte, []byte, error) {
			sk, err := nixkey.Generate("tbfg-node", nil)
			if err != nil {
				return nil, nil, nil, err
			}
			sk.Name = nixKeyName(hostname, sk.Public().Key)
			return sk, []byte(sk.String() + "\n"), []byte(sk.Public().String() + "\n"), nil
		})
	if err != nil {
		return nil, err
	}
	return &k, nil
}

// nixKeyName is the name of the node's Nix key: the host name, which Nix
// users see in trusted-public-keys, then the first hex digits of the key.
// Nix trusts one key per name, so two nodes on hosts of the same name (cloned
// machines, containers) must not share a name: only one node's signatures
// would count.
func nixKeyName(hostname string, pub ed25519.PublicKey) string {
	name := strings.Map(func(r rune) rune {
		if r == ':' || r <= ' ' || r > '~' {
			return '-'
		}
		return r
	}, hostname)
	if name == "" {
		name = "tbfg-node"
	}
	return name + "-" + hex.EncodeToString(pub[:4])
}

// loadOrCreate parses the secret key file sec in dir, or, if it does not
// exist, generates a key and writes sec (0600) and pub (0644), each through
// a temporary file so that a crash leaves no half-written key.
func loadOrCreate[K any](dir, sec, pub string, parse func([]byte) (K, error),
	generate func() (K, []byte, []byte, error)) (K, error) {
	var zero K
	b, err := os.ReadFile(filepath.Join(dir, sec))
	if err == nil {
		k, err := parse(b)
		if err != nil {
			return zero, fmt.Errorf("signing key %s: %w", filepath.Join(dir, sec), err)
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return zero, fmt.Errorf("signing key: %w", err)
	}
	k, secText, pubText, err := generate()
	if err != nil {
		return zero, fmt.Errorf("generate %s: %w", sec, err)
	}
	// The public key first: a secret key without its public half would be
	// loaded next time, but the pub file is only written here.
	pubPath, secPath := filepath.Join(dir, pub), filepath.Join(dir, sec)
	if err := atomicfile.Write(pubPath, pubText, 0o644); err != nil {
		return zero, fmt.Errorf("write %s: %w", pubPath, err)
	}
	if err := atomicfile.Write(secPath, secText, 0o600); err != nil {
		return zero, fmt.Errorf("write %s: %w", secPath, err)
	}
	return k, nil
}
