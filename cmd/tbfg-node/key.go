package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/tbfg/tbfg-node/internal/atomicfile"
	"github.com/tbfg/tbfg-node/node/datadir"
	"github.com/tbfg/tbfg-node/substitutes/nixkey"
	"github.com/tbfg/tbfg-node/substitutes/pki"
)

// Names of the key files `key generate` writes: those of a node's data
// dir. The Guix pair has the names and format of `guix archive
// --generate-key` (/etc/guix/signing-key.*); the Nix pair holds Nix's
// `name:base64` keys, as `nix key generate-secret` and `nix key
// convert-secret-to-public` print them.
const (
	guixSecretFile = datadir.GuixSecretKeyFile
	guixPublicFile = datadir.GuixPublicKeyFile
	nixSecretFile  = datadir.NixSecretKeyFile
	nixPublicFile  = datadir.NixPublicKeyFile
)

// keyCommands lists the "key" subcommands.
func keyCommands() []command {
	return []command{{
		name:    "key generate",
		summary: "write a new signing key pair into DIR (Guix's format, or Nix's with --nix)",
		run:     keyGenerate,
	}}
}

func keyGenerate(_ context.Context, s *stdio, args []string) error {
	flags := newFlags(s, "key generate", "DIR")
	nixName := flags.String("nix", "", "write a Nix key pair named `NAME` (e.g. cache.example.org-1) to "+
		nixSecretFile+" and "+nixPublicFile+" instead of a Guix pair to "+guixSecretFile+" and "+guixPublicFile)
	if err := parseFlags(flags, args); err != nil {
		return err
	}
	if flags.NArg() != 1 {
		flags.Usage()
		return exitCode(2)
	}
	dir := flags.Arg(0)
	secName, pubName, secret, public, err := newKeyPair(*nixName)
	if err != nil {
		return err
	}
	sec, pub := filepath.Join(dir, secName), filepath.Join(dir, pubName)
	if err := writeKeyPair(dir, sec, secret, pub, public); err != nil {
		return err
	}
	fmt.Fprintln(s.out, sec)
	fmt.Fprintln(s.out, pub)
	return nil
}

// newKeyPair makes a Guix key pair, or a Nix one when nixName is set, and
// returns the file names and contents.
func newKeyPair(nixName string) (secName, pubName string, secret, public []byte, err error) {
	if nixName != "" {
		k, err := nixkey.Generate(nixName, rand.Reader)
		if err != nil {
			return "", "", nil, nil, fmt.Errorf("--nix: %w", err)
		}
		return nixSecretFile, nixPublicFile, []byte(k.String()), []byte(k.Public().String()), nil
	}
	k, err := pki.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", nil, nil, fmt.Errorf("generate key: %w", err)
	}
	return guixSecretFile, guixPublicFile, k.Marshal(), k.Public.Marshal(), nil
}

// writeKeyPair writes both files or neither, and never replaces an existing
// file: a lost secret key cannot be recovered.
func writeKeyPair(dir, sec string, secret []byte, pub string, public []byte) error {
	for _, name := range []string{sec, pub} {
		if _, err := os.Lstat(name); err == nil {
			return fmt.Errorf("%s already exists; remove it or choose another directory", name)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create key directory: %w", err)
	}
	// Each file either does not exist or is complete.
	if err := atomicfile.Create(sec, secret, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", sec, err)
	}
	if err := atomicfile.Create(pub, public, 0o644); err != nil {
		os.Remove(sec)
		return fmt.Errorf("write %s: %w", pub, err)
	}
	return nil
}
