package node

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/tbfg/tbfg-node/node/datadir"
)

// resolveSecret finds the secret for cfg's mode: a new one for init (which
// must find none), the given one for join (which must match any stored), the
// stored one for run. stored reports whether the data dir already holds it.
func resolveSecret(cfg Config) (secret []byte, stored bool, err error) {
	path := filepath.Join(cfg.DataDir, datadir.SecretFile)
	have, err := datadir.ReadSecretFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("read mesh secret: %w", err)
	}
	switch cfg.Mode {
	case ModeInit:
		if have != nil {
			return nil, false, fmt.Errorf("%w: %s exists; start the node with tbfg-node run --data-dir %s", ErrInitialised, path, cfg.DataDir)
		}
		s, err := datadir.GenerateSecret()
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
	given, err := datadir.ParseSecret([]byte(cfg.Secret))
	if cfg.SecretFile != "" {
		given, err = datadir.ReadSecretFile(cfg.SecretFile)
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
