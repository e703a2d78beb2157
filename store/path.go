package store

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/tbfg/tbfg-node/store/nixbase32"
)

// Dir is a logical store directory such as /gnu/store or /nix/store: the prefix
// of every store path, which goes into every path's hash.
type Dir string

// The two store directories in common use.
const (
	GuixDir Dir = "/gnu/store"
	NixDir  Dir = "/nix/store"
)

// HashLen is the length of a store path's hash part in nix-base32 characters
// (160 bits).
const HashLen = 32

// MaxNameLen is the longest name a store path may have.
const MaxNameLen = 211

// Errors wrapped by the errors of this package.
var (
	// ErrBadDir is returned for a store directory that is not absolute and clean.
	ErrBadDir = errors.New("invalid store directory")
	// ErrBadPath is returned for a string that is not a store path of the
	// expected store directory.
	ErrBadPath = errors.New("invalid store path")
	// ErrBadName is returned for a store item name that breaks the name rules.
	ErrBadName = errors.New("invalid store path name")
	// ErrBadHash is returned for an unknown hash algorithm or a digest of the
	// wrong length or encoding.
	ErrBadHash = errors.New("invalid hash")
	// ErrBadReference is returned for a reference that is not a store path of
	// the store directory being computed in, or that a path type cannot have.
	ErrBadReference = errors.New("invalid reference")
)

// Validate checks that d is an absolute, clean directory other than "/".
func (d Dir) Validate() error {
	s := string(d)
	if !strings.HasPrefix(s, "/") || path.Clean(s) != s || s == "/" {
		return fmt.Errorf("%w %q: want an absolute path like /gnu/store", ErrBadDir, s)
	}
	return nil
}

// Path is a full store path, e.g. /gnu/store/<hash>-<name>. Values made by
// ParsePath or the Make functions are valid; a Path converted from an arbitrary
// string is not checked.
type Path string

// ParsePath checks that s is a store path directly inside d: the store directory,
// a 32-character nix-base32 hash, a dash and a valid name. Paths below a store
// item (/gnu/store/…-x/bin/sh) are rejected.
func (d Dir) ParsePath(s string) (Path, error) {
	prefix := string(d) + "/"
	if !strings.HasPrefix(s, prefix) {
		return "", fmt.Errorf("%w %q: not in store directory %s", ErrBadPath, s, d)
	}
	if err := ValidateBase(s[len(prefix):]); err != nil {
		return "", fmt.Errorf("%w %q: %w", ErrBadPath, s, err)
	}
	return Path(s), nil
}

// Join returns the path of the store item whose base name (<hash>-<name>) is
// base, after validating it.
func (d Dir) Join(base string) (Path, error) {
	if err := ValidateBase(base); err != nil {
		return "", fmt.Errorf("%w %q: %w", ErrBadPath, base, err)
	}
	return Path(string(d) + "/" + base), nil
}

// ValidateBase checks a store item's base name, <hash>-<name>.
func ValidateBase(base string) error {
	if len(base) < HashLen+2 || base[HashLen] != '-' {
		return fmt.Errorf("want <%d-character hash>-<name>", HashLen)
	}
	if _, err := nixbase32.Decode(base[:HashLen]); err != nil {
		return fmt.Errorf("hash part: %w", err)
	}
	return ValidateName(base[HashLen+1:])
}

// ValidateName checks a store item name: 1 to 211 characters from
// [A-Za-z0-9+-._?=], not starting with a dot.
func ValidateName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty name", ErrBadName)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%w: name is %d characters, the limit is %d", ErrBadName, len(name), MaxNameLen)
	case name[0] == '.':
		return fmt.Errorf("%w %q: name starts with a dot", ErrBadName, name)
	}
	for i := 0; i < len(name); i++ {
		if !nameChar(name[i]) {
			return fmt.Errorf("%w %q: character %q at %d is not allowed", ErrBadName, name, name[i], i)
		}
	}
	return nil
}

func nameChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.IndexByte("+-._?=", c) >= 0
}

// Base is the last element of p: <hash>-<name>.
func (p Path) Base() string { return path.Base(string(p)) }

// HashPart is the 32-character nix-base32 hash of p.
func (p Path) HashPart() string {
	b := p.Base()
	if len(b) < HashLen {
		return ""
	}
	return b[:HashLen]
}

// Name is the part of p after the hash and the dash.
func (p Path) Name() string {
	b := p.Base()
	if len(b) < HashLen+1 {
		return ""
	}
	return b[HashLen+1:]
}

// Dir is the store directory p lives in.
func (p Path) Dir() Dir { return Dir(path.Dir(string(p))) }

// String returns p as a string.
func (p Path) String() string { return string(p) }
