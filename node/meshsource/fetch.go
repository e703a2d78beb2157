package meshsource

import (
	"context"
	"fmt"
	"slices"

	"github.com/tbfg/tbfg-node/scheduler"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/local"
	"github.com/tbfg/tbfg-node/substitutes/narinfo"
	"github.com/tbfg/tbfg-node/substitutes/pki"
)

// Fetch makes paths and their closures valid in the local store, fetching the
// missing items from the mesh, references first. Every fetched item must have
// a narinfo in the state signed by a member key and agreeing with the state's
// record; its NAR is checked by the store against that narinfo. An item that
// cannot be fetched stops the fetch with an error naming it; what was added
// before it stays (it is valid and complete).
func (s *Source) Fetch(ctx context.Context, paths ...store.Path) error {
	f := &fetch{src: s, acl: s.memberACL(), seen: map[store.Path]bool{}}
	for _, p := range paths {
		if err := f.visit(p); err != nil {
			return err
		}
	}
	for _, it := range f.order {
		if err := s.add(ctx, it); err != nil {
			return err
		}
	}
	return nil
}

// fetch is one Fetch call: the items to add, in closure order.
type fetch struct {
	src   *Source
	acl   *pki.ACL
	seen  map[store.Path]bool
	order []*narinfo.Narinfo
}

// visit plans p after its references, unless it is valid here already.
func (f *fetch) visit(p store.Path) error {
	if f.seen[p] {
		return nil
	}
	f.seen[p] = true
	if _, err := f.src.dir.ParsePath(string(p)); err != nil {
		return fmt.Errorf("fetch %q: %w", p, err)
	}
	if f.src.validHere(p) {
		return nil
	}
	ni, err := f.src.trusted(p, f.acl)
	if err != nil {
		return err
	}
	for _, r := range ni.Paths() {
		if r != p {
			if err := f.visit(r); err != nil {
				return fmt.Errorf("%w (a reference of %s)", err, p)
			}
		}
	}
	f.order = append(f.order, ni)
	return nil
}

// memberACL is the ACL of every key members registered with NodeJoined. A
// key that does not parse is left out: that member's narinfos are refused.
func (s *Source) memberACL() *pki.ACL {
	var keys []string
	s.cfg.FSM.Read(func(st *scheduler.State) {
		for _, m := range st.Members() {
			keys = append(keys, m.Key)
		}
	})
	acl := &pki.ACL{}
	for _, k := range keys {
		pk, err := pki.ParsePublicKey([]byte(k))
		if err != nil {
			s.cfg.Logger.Warn("member key ignored", "err", err)
			continue
		}
		acl.Keys = append(acl.Keys, pk)
	}
	return acl
}

// trusted returns p's narinfo from the state after checking its signature
// and that it agrees with the state's record.
func (s *Source) trusted(p store.Path, acl *pki.ACL) (*narinfo.Narinfo, error) {
	it, ok := s.record("", p)
	if !ok || !it.Available {
		return nil, fmt.Errorf("fetch %s: %w", p, ErrNotHeld)
	}
	ni, err := s.parse(p.HashPart(), it.Narinfo)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: recorded narinfo: %w", p, err)
	}
	if st := narinfo.VerifyGuix(ni, acl); st != pki.Valid {
		return nil, fmt.Errorf("fetch %s: %w: %s", p, ErrUntrusted, st)
	}
	if ni.StorePath != p || ni.NarHash != it.NarHash || ni.NarSize != it.NarSize {
		return nil, fmt.Errorf("fetch %s: %w: narinfo has %s %s %d, record %s %d",
			p, ErrRecordMismatch, ni.StorePath, ni.NarHash, ni.NarSize, it.NarHash, it.NarSize)
	}
	return ni, nil
}

// add opens the NAR of ni's item and adds it to the local store, which checks
// it against NarHash and NarSize before it becomes valid.
func (s *Source) add(ctx context.Context, ni *narinfo.Narinfo) error {
	info, err := s.localInfo(ni)
	if err != nil {
		return err
	}
	rc, err := s.OpenNAR(ctx, ni.StorePath)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", ni.StorePath, err)
	}
	defer rc.Close()
	if err := s.cfg.Store.AddFromNAR(ctx, info, rc); err != nil {
		return fmt.Errorf("fetch %s: %w", ni.StorePath, err)
	}
	return nil
}

// localInfo turns a trusted narinfo into the record the local store keeps.
func (s *Source) localInfo(ni *narinfo.Narinfo) (*local.Info, error) {
	sum, err := local.ParseSum(ni.NarHash, int64(ni.NarSize))
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", ni.StorePath, err)
	}
	info := &local.Info{Path: ni.StorePath, Nar: sum, References: ni.Paths(), CA: ni.CA}
	slices.Sort(info.References)
	if ni.Deriver != "" {
		if info.Deriver, err = s.dir.Join(ni.Deriver); err != nil {
			return nil, fmt.Errorf("fetch %s: deriver: %w", ni.StorePath, err)
		}
	}
	return info, nil
}
