package derivation

import (
	"errors"
	"fmt"
	"strings"

	"github.com/tbfg/tbfg-node/store"
)

// MaxSize is the largest .drv file Parse accepts. Real derivations are well
// under a megabyte; the limit keeps hostile input from using unbounded memory.
const MaxSize = 64 << 20

// MaxDepth is the deepest chain of input derivations a Hasher follows.
const MaxDepth = 10000

// Errors wrapped by this package.
var (
	// ErrSyntax is wrapped by every *SyntaxError.
	ErrSyntax = errors.New("derivation syntax error")
	// ErrTooLarge is returned for input larger than MaxSize.
	ErrTooLarge = errors.New("derivation too large")
	// ErrFixedOutput is returned for a derivation whose fixed output is not
	// its only output named "out", or whose hash cannot be used.
	ErrFixedOutput = errors.New("invalid fixed-output derivation")
	// ErrNoName is returned when a derivation's name can be found neither in
	// its output paths nor in its "name" variable.
	ErrNoName = errors.New("derivation has no name")
	// ErrCycle is returned when input derivations refer to each other in a
	// loop or nest deeper than MaxDepth.
	ErrCycle = errors.New("input derivations form a cycle or are nested too deeply")
	// ErrWrongOutput is wrapped by every *OutputError.
	ErrWrongOutput = errors.New("wrong output path")
)

// Derivation is the contents of a .drv file: a build recipe. Maps are printed
// in sorted key order, the canonical order Guix and Nix write.
type Derivation struct {
	// Outputs maps each output id ("out", "dev", …) to its path and, for a
	// fixed-output derivation, its expected hash.
	Outputs map[string]Output
	// InputDrvs maps each input derivation's .drv path to the ids of the
	// outputs this derivation uses.
	InputDrvs map[store.Path][]string
	// InputSrcs are the store items, other than outputs of input
	// derivations, that the build needs.
	InputSrcs []store.Path
	// System is the platform the builder runs on, e.g. x86_64-linux.
	System string
	// Builder is the program that performs the build.
	Builder string
	// Args are the builder's arguments, in order.
	Args []string
	// Env holds the builder's environment variables.
	Env map[string]string
}

// Output is one output of a derivation.
type Output struct {
	// Path is the output's store path, or empty for a placeholder whose path
	// has not been computed yet.
	Path store.Path
	// HashAlgo is empty for an input-addressed output; for a fixed output it
	// is the hash algorithm, prefixed with "r:" when the hash covers the
	// NAR serialisation rather than a flat file (e.g. "r:sha256").
	HashAlgo string
	// Hash is the expected hash of a fixed output in lowercase hex.
	Hash string
}

// IsFixed reports whether o is a fixed output, whose contents are known in
// advance by their hash.
func (o Output) IsFixed() bool { return o.HashAlgo != "" }

// FixedHash returns the hash mode and expected hash of a fixed output.
func (o Output) FixedHash() (store.HashMode, store.Hash, error) {
	mode, algo := store.Flat, o.HashAlgo
	if rest, ok := strings.CutPrefix(algo, "r:"); ok {
		mode, algo = store.Recursive, rest
	}
	a, err := store.ParseHashAlgo(algo)
	if err != nil {
		return 0, store.Hash{}, fmt.Errorf("%w: %w", ErrFixedOutput, err)
	}
	h, err := store.ParseHexHash(a, o.Hash)
	if err != nil {
		return 0, store.Hash{}, fmt.Errorf("%w: %w", ErrFixedOutput, err)
	}
	return mode, h, nil
}

// IsFixed reports whether d is a fixed-output derivation.
func (d *Derivation) IsFixed() bool {
	for _, o := range d.Outputs {
		if o.IsFixed() {
			return true
		}
	}
	return false
}

// Name returns the derivation's name: the name of its "out" path, the name of
// another output's path without the "-<id>" suffix, or else its "name"
// variable. Callers that know the .drv path should prefer NameFromPath.
func (d *Derivation) Name() (string, error) {
	if o, ok := d.Outputs["out"]; ok && o.Path != "" {
		return o.Path.Name(), nil
	}
	for _, id := range sortedKeys(d.Outputs) {
		if n, ok := strings.CutSuffix(d.Outputs[id].Path.Name(), "-"+id); ok && n != "" {
			return n, nil
		}
	}
	if n := d.Env["name"]; n != "" {
		return n, nil
	}
	return "", ErrNoName
}

// NameFromPath returns the derivation name of a .drv store path: its name
// without the ".drv" suffix.
func NameFromPath(p store.Path) (string, error) {
	n, ok := strings.CutSuffix(p.Name(), ".drv")
	if !ok || n == "" {
		return "", fmt.Errorf("%w %q: want <hash>-<name>.drv", store.ErrBadPath, p)
	}
	return n, nil
}

// SyntaxError says where a .drv file breaks the ATerm derivation format.
type SyntaxError struct {
	Line, Column int    // 1-based; the column counts bytes
	Msg          string // what was wrong, e.g. `expected '"', found 'x'`
}

// Error returns "derivation line L, column C: " followed by Msg.
func (e *SyntaxError) Error() string {
	return fmt.Sprintf("derivation line %d, column %d: %s", e.Line, e.Column, e.Msg)
}

// Unwrap returns ErrSyntax.
func (e *SyntaxError) Unwrap() error { return ErrSyntax }

// OutputError says that an output's recorded path, or the environment
// variable named after it, differs from the path computed from the
// derivation.
type OutputError struct {
	Output string     // output id
	Var    bool       // the environment variable is wrong, not the output path
	Got    store.Path // what the derivation records
	Want   store.Path // what it should record
}

// Error names the output, what the derivation records and what it should.
func (e *OutputError) Error() string {
	if e.Var {
		return fmt.Sprintf("output %q: environment variable %s is %s, want %s", e.Output, e.Output, shown(e.Got), e.Want)
	}
	return fmt.Sprintf("output %q: path is %s, want %s", e.Output, shown(e.Got), e.Want)
}

// shown is p, or "" in quotes when p is empty.
func shown(p store.Path) string {
	if p == "" {
		return `""`
	}
	return string(p)
}

// Unwrap returns ErrWrongOutput.
func (e *OutputError) Unwrap() error { return ErrWrongOutput }
