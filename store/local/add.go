package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/nar"
	"github.com/tbfg/tbfg-node/store/nixbase32"
)

// AddFromNAR adds the item info.Path from the archive r, whose NarHash and
// NarSize must be info.Nar, with info's references, deriver and content
// address. The archive is unpacked into a staging directory of the store,
// checked and made read-only, and only then renamed into place and
// registered: on any error nothing new is valid. Every reference other than the item itself must
// already be valid. If the item is valid already, r is not read and the call
// succeeds.
func (s *Store) AddFromNAR(ctx context.Context, info *Info, r io.Reader) error {
	if err := s.checkInfo(info); err != nil {
		return err
	}
	unlock, err := s.Lock(ctx, info.Path)
	if err != nil {
		return err
	}
	defer unlock()
	if ok, err := s.IsValid(info.Path); err != nil || ok {
		return err
	}
	if err := s.checkReferences([]*Info{info}); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(s.real, stagingPrefix)
	if err != nil {
		return fmt.Errorf("add %s: %w", info.Path, err)
	}
	defer removeTree(tmp)
	staged := filepath.Join(tmp, info.Path.Base())
	if err := restoreChecked(r, staged, info.Nar); err != nil {
		return fmt.Errorf("add %s: %w", info.Path, err)
	}
	if err := canonicalise(staged); err != nil {
		return fmt.Errorf("add %s: %w", info.Path, err)
	}
	return s.moveIn(staged, info)
}

// restoreChecked unpacks r as dir and checks that the archive hashes to want.
func restoreChecked(r io.Reader, dir string, want nar.Sum) error {
	h := nar.NewHasher()
	// The limit stops an archive longer than announced without reading it all.
	lr := &io.LimitedReader{R: r, N: want.Size + 1}
	if err := nar.Restore(io.TeeReader(lr, h), dir); err != nil {
		return err
	}
	if got := h.Sum(); got != want {
		return fmt.Errorf("%w: archive has %s, %d bytes; expected %s, %d bytes",
			ErrHashMismatch, got.NarHash(), got.Size, want.NarHash(), want.Size)
	}
	return nil
}

// moveIn renames the staged, canonical item into place and registers it. A
// directory left at the target by an earlier crash is not valid, and is
// removed first.
func (s *Store) moveIn(staged string, info *Info) error {
	dst := filepath.Join(s.real, info.Path.Base())
	if err := removeTree(dst); err != nil {
		return fmt.Errorf("add %s: remove invalid leftover: %w", info.Path, err)
	}
	if err := moveCanonical(staged, dst); err != nil {
		removeTree(dst) // whatever reached dst is not valid
		return fmt.Errorf("add %s: move into place: %w", info.Path, err)
	}
	if err := s.Register(info); err != nil {
		removeTree(dst)
		return err
	}
	return nil
}

// AddText adds a text item named name holding contents and referring to refs,
// as Guix's add-text-to-store and Nix's addTextToStore do (.drv files,
// builder scripts), and returns its path.
func (s *Store) AddText(ctx context.Context, name string, contents []byte, refs []store.Path) (store.Path, error) {
	h := store.SHA256Of(contents)
	p, err := s.dir.TextPath(name, h, refs)
	if err != nil {
		return "", fmt.Errorf("add text %q: %w", name, err)
	}
	var buf bytes.Buffer
	hasher := nar.NewHasher()
	nw := nar.NewWriter(io.MultiWriter(&buf, hasher))
	err = nw.WriteHeader(&nar.Header{Path: "/", Type: nar.TypeRegular, Size: int64(len(contents))})
	if err == nil {
		_, err = nw.Write(contents)
	}
	if err == nil {
		err = nw.Close()
	}
	if err != nil {
		return "", fmt.Errorf("add text %q: %w", name, err)
	}
	info := &Info{Path: p, Nar: hasher.Sum(), References: sortedPaths(refs),
		CA: "text:sha256:" + nixbase32.Encode(h.Digest)}
	return p, s.AddFromNAR(ctx, info, &buf)
}

// Register records items that are already in place in the real directory
// (made by Inspect, or by AddFromNAR) as valid, all in one transaction. Every
// reference must be valid or one of the items. The caller holds their lock.
func (s *Store) Register(infos ...*Info) error {
	for _, info := range infos {
		if err := s.checkInfo(info); err != nil {
			return err
		}
	}
	if err := s.checkReferences(infos); err != nil {
		return err
	}
	now := s.now().UTC()
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, info := range infos {
			info.Registered = now
			info.References = sortedPaths(info.References)
			if err := putInfo(tx, info); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("register %s: %w", infos[0].Path, dbErr(err))
	}
	return nil
}

// checkInfo checks that info names paths of this store.
func (s *Store) checkInfo(info *Info) error {
	if _, err := s.dir.ParsePath(string(info.Path)); err != nil {
		return err
	}
	for _, r := range info.References {
		if _, err := s.dir.ParsePath(string(r)); err != nil {
			return fmt.Errorf("%s: reference: %w", info.Path, err)
		}
	}
	if info.Deriver != "" {
		if _, err := s.dir.ParsePath(string(info.Deriver)); err != nil {
			return fmt.Errorf("%s: deriver: %w", info.Path, err)
		}
	}
	return nil
}

// checkReferences checks that every reference of infos is valid or is one of
// infos.
func (s *Store) checkReferences(infos []*Info) error {
	self := make(map[store.Path]bool, len(infos))
	for _, info := range infos {
		self[info.Path] = true
	}
	for _, info := range infos {
		for _, r := range info.References {
			if self[r] {
				continue
			}
			ok, err := s.IsValid(r)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("%s: %w: %s", info.Path, ErrMissingReference, r)
			}
		}
	}
	return nil
}

// Inspect canonicalises the unregistered item p that a build wrote in place
// (read-only, mtime 1) and returns its NAR hash and size and which of
// candidates it refers to, computed in one pass over its archive. It does not
// register p; pass the result, with Deriver and CA set, to Register.
func (s *Store) Inspect(p store.Path, candidates []store.Path) (*Info, error) {
	real, err := s.RealPath(p)
	if err != nil {
		return nil, err
	}
	if err := canonicalise(real); err != nil {
		return nil, fmt.Errorf("inspect %s: %w", p, err)
	}
	h := nar.NewHasher()
	sc := NewScanner(candidates)
	if err := nar.Dump(io.MultiWriter(h, sc), real); err != nil {
		return nil, fmt.Errorf("inspect %s: %w", p, err)
	}
	return &Info{Path: p, Nar: h.Sum(), References: sc.Found()}, nil
}

// RemoveInvalid removes whatever is at p's real location if p is not valid:
// the output of a failed build, or a leftover. It refuses to remove a valid
// item. The caller holds p's lock.
func (s *Store) RemoveInvalid(p store.Path) error {
	real, err := s.RealPath(p)
	if err != nil {
		return err
	}
	ok, err := s.IsValid(p)
	if err != nil {
		return err
	}
	if ok {
		return fmt.Errorf("remove %s: it is valid", p)
	}
	return removeTree(real)
}

// Dump writes the NAR of the valid item p to w, and counts as a use of p
// (Touch).
func (s *Store) Dump(p store.Path, w io.Writer) error {
	if _, err := s.Query(p); err != nil {
		return err
	}
	s.Touch(p)
	real, _ := s.RealPath(p) // Query checked p
	return nar.Dump(w, real)
}

// Closure returns every valid path reachable from paths through references,
// paths included, sorted. It fails if any of them is not valid.
func (s *Store) Closure(paths ...store.Path) ([]store.Path, error) {
	seen := make(map[store.Path]bool)
	todo := slices.Clone(paths)
	for len(todo) > 0 {
		p := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		if seen[p] {
			continue
		}
		info, err := s.Query(p)
		if err != nil {
			return nil, fmt.Errorf("closure: %w", err)
		}
		seen[p] = true
		todo = append(todo, info.References...)
	}
	out := make([]store.Path, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	slices.Sort(out)
	return out, nil
}

func sortedPaths(ps []store.Path) []store.Path {
	return slices.Compact(slices.Sorted(slices.Values(ps)))
}

// errNotExist reports whether err means the file is missing.
func errNotExist(err error) bool { return errors.Is(err, os.ErrNotExist) }
