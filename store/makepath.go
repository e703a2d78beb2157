package store

import (
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"

	"github.com/tbfg/tbfg-node/store/nixbase32"
)

// HashMode says what the hash of a fixed-output item covers.
type HashMode int

const (
	// Flat hashes the contents of a single regular file.
	Flat HashMode = iota
	// Recursive hashes the NAR serialisation of a file tree.
	Recursive
)

// MakePath computes the store path of an item named name whose identity is
// described by typ (e.g. "text", "source:<ref>", "output:out") and h: the
// SHA-256 of "<typ>:<algo>:<hex>:<store dir>:<name>", folded to 20 bytes and
// written in nix-base32. Every other path computation goes through it.
func (d Dir) MakePath(typ string, h Hash, name string) (Path, error) {
	if err := d.Validate(); err != nil {
		return "", err
	}
	if err := h.valid(); err != nil {
		return "", err
	}
	if err := ValidateName(name); err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(typ + ":" + h.String() + ":" + string(d) + ":" + name))
	return Path(string(d) + "/" + nixbase32.Encode(compress(sum[:], 20)) + "-" + name), nil
}

// compress folds b into size bytes by XOR, as Nix's compressHash does.
func compress(b []byte, size int) []byte {
	out := make([]byte, size)
	for i, c := range b {
		out[i%size] ^= c
	}
	return out
}

// TextPath is the path of a text item (a .drv file, a builder script added with
// add-text-to-store) whose contents hash to contentHash, a SHA-256 digest, and
// which refers to refs.
func (d Dir) TextPath(name string, contentHash Hash, refs []Path) (Path, error) {
	if contentHash.Algo != SHA256 {
		return "", fmt.Errorf("%w: text paths need a sha256 hash, not %s", ErrBadHash, contentHash.Algo)
	}
	typ, err := d.pathType("text", refs, false)
	if err != nil {
		return "", err
	}
	return d.MakePath(typ, contentHash, name)
}

// SourcePath is the path of a file tree added by content (nix-store --add,
// Guix's add-to-store with recursive SHA-256) whose NAR hashes to narHash, a
// SHA-256 digest, with references refs and, if self is set, a reference to
// itself.
func (d Dir) SourcePath(name string, narHash Hash, refs []Path, self bool) (Path, error) {
	if narHash.Algo != SHA256 {
		return "", fmt.Errorf("%w: source paths need a sha256 hash, not %s", ErrBadHash, narHash.Algo)
	}
	typ, err := d.pathType("source", refs, self)
	if err != nil {
		return "", err
	}
	return d.MakePath(typ, narHash, name)
}

// OutputPath is the path of output id of an input-addressed derivation named
// drvName whose masked hashDerivationModulo is hashModulo. Outputs other than
// "out" get the name "<drvName>-<id>".
func (d Dir) OutputPath(id string, hashModulo Hash, drvName string) (Path, error) {
	return d.MakePath("output:"+id, hashModulo, OutputName(drvName, id))
}

// OutputName is the store name of output id of a derivation named drvName.
func OutputName(drvName, id string) string {
	if id == "out" {
		return drvName
	}
	return drvName + "-" + id
}

// FixedOutputPath is the path of a fixed-output item named name whose contents
// (mode Flat) or NAR serialisation (mode Recursive) hash to h. A recursive
// SHA-256 item is a source path and may have references; any other item is
// named through "fixed:out:[r:]<algo>:<hex>:" and may not.
func (d Dir) FixedOutputPath(name string, mode HashMode, h Hash, refs []Path) (Path, error) {
	if err := h.valid(); err != nil {
		return "", err
	}
	if mode == Recursive && h.Algo == SHA256 {
		return d.SourcePath(name, h, refs, false)
	}
	if len(refs) > 0 {
		return "", fmt.Errorf("%w: only recursive sha256 fixed-output items may have references", ErrBadReference)
	}
	prefix := "fixed:out:"
	if mode == Recursive {
		prefix += "r:"
	}
	return d.MakePath("output:out", SHA256Of([]byte(prefix+h.String()+":")), name)
}

// pathType is typ followed by ":<ref>" for each distinct reference in sorted
// order and ":self" for a self-reference.
func (d Dir) pathType(typ string, refs []Path, self bool) (string, error) {
	sorted := slices.Clone(refs)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	var b strings.Builder
	b.WriteString(typ)
	for _, r := range sorted {
		if r.Dir() != d {
			return "", fmt.Errorf("%w %q: not in store directory %s", ErrBadReference, r, d)
		}
		b.WriteString(":")
		b.WriteString(string(r))
	}
	if self {
		b.WriteString(":self")
	}
	return b.String(), nil
}
