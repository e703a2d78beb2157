package derivation

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/tbfg/tbfg-node/store"
)

// Loader gives a Hasher the input derivations of the derivations it hashes.
type Loader interface {
	// Load returns the derivation stored at the .drv path p.
	Load(p store.Path) (*Derivation, error)
}

// Hasher computes hashDerivationModulo, output paths and .drv paths for
// derivations of one store directory, loading input derivations through a
// Loader. It remembers the hash of every input derivation it has loaded, so
// hashing many derivations of one closure loads each input once. It is safe
// for concurrent use.
type Hasher struct {
	dir    store.Dir
	loader Loader

	mu   sync.Mutex
	memo map[store.Path]store.Hash // unmasked hashes of input derivations
}

// NewHasher returns a Hasher for derivations of dir whose inputs come from l.
func NewHasher(dir store.Dir, l Loader) *Hasher {
	return &Hasher{dir: dir, loader: l, memo: make(map[store.Path]store.Hash)}
}

// HashModulo returns hashDerivationModulo of d, named name, with its own
// outputs masked: the hash its input-addressed output paths are made from.
// For a fixed-output derivation it is the hash of
// "fixed:out:<hashAlgo>:<hash>:<path>", which does not depend on how the
// output is built.
func (h *Hasher) HashModulo(d *Derivation, name string) (store.Hash, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hashModulo(d, name, true, make(map[store.Path]bool))
}

// hashModulo is HashModulo without the lock. visiting holds the input
// derivations being hashed further up the recursion, to detect cycles.
func (h *Hasher) hashModulo(d *Derivation, name string, mask bool, visiting map[store.Path]bool) (store.Hash, error) {
	if d.IsFixed() {
		return h.fixedHash(d, name)
	}
	inputs := make(map[string]input, len(d.InputDrvs))
	for p, outs := range d.InputDrvs {
		ih, err := h.inputHash(p, visiting)
		if err != nil {
			return store.Hash{}, err
		}
		// Two inputs with the same hash keep the later one's outputs, as Nix's
		// map assignment does.
		inputs[ih.Hex()] = input{key: ih.Hex(), outputs: outs}
	}
	list := slices.SortedFunc(maps.Values(inputs), func(a, b input) int { return cmp.Compare(a.key, b.key) })
	return store.SHA256Of(d.appendATerm(nil, mask, list)), nil
}

// inputHash returns the unmasked hashDerivationModulo of the input derivation
// at p, loading it on first use.
func (h *Hasher) inputHash(p store.Path, visiting map[store.Path]bool) (store.Hash, error) {
	if ih, ok := h.memo[p]; ok {
		return ih, nil
	}
	if visiting[p] || len(visiting) >= MaxDepth {
		return store.Hash{}, fmt.Errorf("%w: at %s", ErrCycle, p)
	}
	name, err := NameFromPath(p)
	if err != nil {
		return store.Hash{}, err
	}
	d, err := h.loader.Load(p)
	if err != nil {
		return store.Hash{}, fmt.Errorf("load input derivation %s: %w", p, err)
	}
	visiting[p] = true
	ih, err := h.hashModulo(d, name, false, visiting)
	delete(visiting, p)
	if err != nil {
		return store.Hash{}, fmt.Errorf("input derivation %s: %w", p, err)
	}
	h.memo[p] = ih
	return ih, nil
}

// fixedHash is hashDerivationModulo of a fixed-output derivation.
func (h *Hasher) fixedHash(d *Derivation, name string) (store.Hash, error) {
	o, err := fixedOutput(d)
	if err != nil {
		return store.Hash{}, err
	}
	path, err := h.fixedPath(o, name)
	if err != nil {
		return store.Hash{}, err
	}
	return store.SHA256Of([]byte("fixed:out:" + o.HashAlgo + ":" + o.Hash + ":" + string(path))), nil
}

// fixedOutput returns the output of a fixed-output derivation, checking that
// it is the only output and is named "out".
func fixedOutput(d *Derivation) (Output, error) {
	o, ok := d.Outputs["out"]
	if len(d.Outputs) != 1 || !ok || !o.IsFixed() {
		return Output{}, fmt.Errorf("%w: a fixed output must be the only output and be named \"out\"", ErrFixedOutput)
	}
	return o, nil
}

func (h *Hasher) fixedPath(o Output, name string) (store.Path, error) {
	mode, fh, err := o.FixedHash()
	if err != nil {
		return "", err
	}
	return h.dir.FixedOutputPath(name, mode, fh, nil)
}

// OutputPaths computes the path of every output of d, named name, from its
// contents: from the expected hash for a fixed-output derivation, from
// HashModulo otherwise. The paths recorded in d are not used, so placeholder
// outputs with empty paths get their paths too.
func (h *Hasher) OutputPaths(d *Derivation, name string) (map[string]store.Path, error) {
	paths := make(map[string]store.Path, len(d.Outputs))
	if d.IsFixed() {
		o, err := fixedOutput(d)
		if err != nil {
			return nil, err
		}
		p, err := h.fixedPath(o, name)
		if err != nil {
			return nil, err
		}
		paths["out"] = p
		return paths, nil
	}
	hm, err := h.HashModulo(d, name)
	if err != nil {
		return nil, err
	}
	for id := range d.Outputs {
		if paths[id], err = h.dir.OutputPath(id, hm, name); err != nil {
			return nil, fmt.Errorf("output %q: %w", id, err)
		}
	}
	return paths, nil
}

// Check recomputes the output paths of d, named name, and compares them with
// the paths d records and with the environment variables named after its
// outputs, as a daemon does before accepting a derivation. It returns every
// mismatch as an *OutputError, joined, in output order.
func (h *Hasher) Check(d *Derivation, name string) error {
	paths, err := h.OutputPaths(d, name)
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range sortedKeys(paths) {
		want := paths[id]
		if got := d.Outputs[id].Path; got != want {
			errs = append(errs, &OutputError{Output: id, Got: got, Want: want})
		}
		if got := store.Path(d.Env[id]); got != want {
			errs = append(errs, &OutputError{Output: id, Var: true, Got: got, Want: want})
		}
	}
	return errors.Join(errs...)
}

// Fill sets the path of every output of d, named name, and the environment
// variable named after each output, to the computed output paths: what
// Guix's derivation procedure and nix-instantiate do to a derivation whose
// outputs are still empty placeholders.
func (h *Hasher) Fill(d *Derivation, name string) error {
	paths, err := h.OutputPaths(d, name)
	if err != nil {
		return err
	}
	if d.Env == nil {
		d.Env = make(map[string]string, len(paths))
	}
	for id, p := range paths {
		o := d.Outputs[id]
		o.Path = p
		d.Outputs[id] = o
		d.Env[id] = string(p)
	}
	return nil
}

// StorePath is the store path of the .drv file holding d, named name: a text
// path of d.Bytes() whose references are d's input sources and input
// derivations, named "<name>.drv".
func StorePath(dir store.Dir, d *Derivation, name string) (store.Path, error) {
	refs := slices.Concat(d.InputSrcs, slices.Collect(maps.Keys(d.InputDrvs)))
	return dir.TextPath(name+".drv", store.SHA256Of(d.Bytes()), refs)
}
