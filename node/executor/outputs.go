package executor

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/derivation"
	"github.com/tbfg/tbfg-node/store/local"
	"github.com/tbfg/tbfg-node/store/nar"
	"github.com/tbfg/tbfg-node/store/nixbase32"
)

// register checks and registers the outputs the builder wrote, all at once.
func (b *Builtin) register(req Request, outputs map[string]store.Path, closure []store.Path) (*Result, error) {
	st := b.cfg.Store
	cands := candidates(closure, outputs)
	res := &Result{Outputs: make(map[string]*local.Info, len(outputs)), Built: true}
	infos := make([]*local.Info, 0, len(outputs))
	for id, p := range outputs {
		real, _ := st.RealPath(p) // check validated every output path
		if _, err := os.Lstat(real); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s (%s)", ErrMissingOutput, id, p)
		}
		info, err := st.Inspect(p, cands)
		if err != nil {
			return nil, err
		}
		info.Deriver = req.DrvPath
		if o := req.Drv.Outputs[id]; o.IsFixed() {
			if err := checkFixed(o, info, real); err != nil {
				return nil, fmt.Errorf("output %s: %w", id, err)
			}
		}
		res.Outputs[id] = info
		infos = append(infos, info)
	}
	if err := checkCycles(res.Outputs); err != nil {
		return nil, err
	}
	if err := st.Register(infos...); err != nil {
		return nil, err
	}
	return res, nil
}

// checkFixed checks a fixed output's contents against its declared hash and
// sets its content address. Fixed outputs may not refer to store paths.
func checkFixed(o derivation.Output, info *local.Info, real string) error {
	mode, want, err := o.FixedHash()
	if err != nil {
		return err
	}
	got, err := contentHash(mode, want.Algo, real)
	if err != nil {
		return err
	}
	if got.Hex() != want.Hex() {
		return fmt.Errorf("%w: declared %s, got %s", ErrOutputHash, want, got)
	}
	if len(info.References) > 0 {
		return fmt.Errorf("%w: it refers to %v", ErrOutputHash, info.References)
	}
	prefix := "fixed:"
	if mode == store.Recursive {
		prefix += "r:"
	}
	info.CA = prefix + string(want.Algo) + ":" + nixbase32.Encode(got.Digest)
	return nil
}

// contentHash hashes a flat file's contents or a tree's NAR with algo.
func contentHash(mode store.HashMode, algo store.HashAlgo, real string) (store.Hash, error) {
	h := algo.New()
	if mode == store.Recursive {
		if err := nar.Dump(h, real); err != nil {
			return store.Hash{}, err
		}
		return store.Hash{Algo: algo, Digest: h.Sum(nil)}, nil
	}
	if fi, err := os.Lstat(real); err != nil || !fi.Mode().IsRegular() {
		return store.Hash{}, fmt.Errorf("%w: a flat fixed output must be a regular file", ErrOutputHash)
	}
	f, err := os.Open(real)
	if err != nil {
		return store.Hash{}, err
	}
	defer f.Close()
	if _, err := io.Copy(h, f); err != nil {
		return store.Hash{}, err
	}
	return store.Hash{Algo: algo, Digest: h.Sum(nil)}, nil
}

// checkCycles refuses outputs that refer to each other in a loop (a
// self-reference is fine), as Nix does: no order of copying them would keep
// every reference valid.
func checkCycles(outputs map[string]*local.Info) error {
	byPath := make(map[store.Path]*local.Info, len(outputs))
	for _, info := range outputs {
		byPath[info.Path] = info
	}
	const (
		visiting = 1
		done     = 2
	)
	state := make(map[store.Path]int)
	var visit func(p store.Path) error
	visit = func(p store.Path) error {
		switch state[p] {
		case visiting:
			return fmt.Errorf("%w: the outputs refer to each other in a cycle through %s", ErrOutputCycle, p)
		case done:
			return nil
		}
		state[p] = visiting
		for _, r := range byPath[p].References {
			if _, ok := byPath[r]; ok && r != p {
				if err := visit(r); err != nil {
					return err
				}
			}
		}
		state[p] = done
		return nil
	}
	for p := range byPath {
		if err := visit(p); err != nil {
			return err
		}
	}
	return nil
}
