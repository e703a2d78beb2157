package meshsource

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/tbfg/tbfg-node/internal/pipe"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/derivation"
	"github.com/tbfg/tbfg-node/store/local"
	"github.com/tbfg/tbfg-node/store/nar"
	"github.com/tbfg/tbfg-node/store/nixbase32"
)

// maxTextSource is the largest source checked as a text item (added with
// add-text-to-store, e.g. a builder script); larger ones can only be sources
// added by content.
const maxTextSource = 16 << 20

// ImportDrvs adds the .drv files drvs and their closure (input derivations and
// input sources) to st, reading them from root, a directory holding items of
// st's store directory by base name (a store, the real directory of a chroot
// store, or a copy of one). Before anything is added, every .drv in the
// closure must recompute: its own path from its contents and its output paths
// from its inputs. Each source must recompute from its contents as a source
// path (added by content) or a text path whose references are among the
// closure. Items valid in st already are not read again. Everything is
// checked before the first item is added, so a closure that does not
// recompute adds nothing. It returns the closure's .drv paths, inputs first.
func ImportDrvs(ctx context.Context, st *local.Store, root string, drvs ...store.Path) ([]store.Path, error) {
	im := &importer{st: st, root: root, dir: st.Dir(), loaded: map[store.Path]*derivation.Derivation{},
		state: map[store.Path]int{}, sources: map[store.Path]*local.Info{}}
	im.loader = derivation.DirLoader{Root: root, Dir: im.dir}
	im.hasher = derivation.NewHasher(im.dir, im.loader)
	for _, d := range drvs {
		if err := im.collect(d); err != nil {
			return nil, err
		}
	}
	for _, d := range im.order {
		for _, src := range im.loaded[d].InputSrcs {
			if err := im.planSource(src); err != nil {
				return nil, fmt.Errorf("%w (a source of %s)", err, d)
			}
		}
	}
	for _, d := range im.order {
		if err := im.importPath(ctx, d); err != nil {
			return nil, err
		}
	}
	return im.order, nil
}

type importer struct {
	st     *local.Store
	root   string
	dir    store.Dir
	loader derivation.DirLoader
	hasher *derivation.Hasher
	loaded map[store.Path]*derivation.Derivation
	order  []store.Path       // derivations, inputs first
	known  []store.Path       // every path of the closure: text reference candidates
	state  map[store.Path]int // 1 importing, 2 done
	// sources are the checked records of the sources to add, worked out
	// before anything is added.
	sources map[store.Path]*local.Info
}

// collect loads and checks d and its input derivations, inputs first.
func (im *importer) collect(d store.Path) error {
	if _, ok := im.loaded[d]; ok {
		return nil
	}
	drv, err := im.checkDrv(d)
	if err != nil {
		return err
	}
	im.loaded[d] = drv
	for _, in := range slices.Sorted(maps.Keys(drv.InputDrvs)) {
		if err := im.collect(in); err != nil {
			return fmt.Errorf("%w (an input of %s)", err, d)
		}
	}
	im.order = append(im.order, d)
	return nil
}

// checkDrv loads d from root and checks that its path and outputs recompute.
func (im *importer) checkDrv(d store.Path) (*derivation.Derivation, error) {
	if _, err := im.dir.ParsePath(string(d)); err != nil {
		return nil, fmt.Errorf("import %s: %w", d, err)
	}
	name, err := derivation.NameFromPath(d)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", d, err)
	}
	drv, err := im.loader.Load(d)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", d, err)
	}
	got, err := derivation.StorePath(im.dir, drv, name)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", d, err)
	}
	if got != d {
		return nil, fmt.Errorf("import %s: %w: its contents give %s", d, ErrBadDerivation, got)
	}
	if err := im.hasher.Check(drv, name); err != nil {
		return nil, fmt.Errorf("import %s: %w: %w", d, ErrBadDerivation, err)
	}
	return drv, nil
}

// importPath adds p (a collected .drv or a source) after its references.
func (im *importer) importPath(ctx context.Context, p store.Path) error {
	switch im.state[p] {
	case 1:
		return fmt.Errorf("import %s: %w: reference cycle", p, ErrBadDerivation)
	case 2:
		return nil
	}
	im.state[p] = 1
	var err error
	if drv, ok := im.loaded[p]; ok {
		err = im.importDrv(ctx, p, drv)
	} else {
		err = im.importSource(ctx, p)
	}
	if err != nil {
		return err
	}
	im.state[p] = 2
	return nil
}

// importDrv adds the checked derivation drv at p, after its inputs.
func (im *importer) importDrv(ctx context.Context, p store.Path, drv *derivation.Derivation) error {
	refs := slices.Concat(drv.InputSrcs, slices.Collect(maps.Keys(drv.InputDrvs)))
	slices.Sort(refs)
	for _, r := range refs {
		if err := im.importPath(ctx, r); err != nil {
			return err
		}
	}
	name, _ := derivation.NameFromPath(p)
	got, err := im.st.AddText(ctx, name+".drv", drv.Bytes(), refs)
	if err != nil {
		return fmt.Errorf("import %s: %w", p, err)
	}
	if got != p {
		return fmt.Errorf("import %s: %w: stored as %s", p, ErrBadDerivation, got)
	}
	return nil
}

// planSource checks the source p and its references, unless valid in the
// store already.
func (im *importer) planSource(p store.Path) error {
	if _, ok := im.sources[p]; ok || im.loaded[p] != nil {
		return nil
	}
	if ok, err := im.st.IsValid(p); err == nil && ok {
		return nil
	}
	if _, err := im.dir.ParsePath(string(p)); err != nil {
		return fmt.Errorf("import source %s: %w", p, err)
	}
	info, err := im.sourceInfo(p, filepath.Join(im.root, p.Base()))
	if err != nil {
		return fmt.Errorf("import source %s: %w", p, err)
	}
	im.sources[p] = info
	for _, r := range info.References {
		if err := im.planSource(r); err != nil {
			return fmt.Errorf("%w (a reference of %s)", err, p)
		}
	}
	return nil
}

// importSource adds the planned source p after its references.
func (im *importer) importSource(ctx context.Context, p store.Path) error {
	info, ok := im.sources[p]
	if !ok {
		return nil // valid in the store already
	}
	for _, r := range info.References {
		if err := im.importPath(ctx, r); err != nil {
			return err
		}
	}
	real := filepath.Join(im.root, p.Base())
	rc := pipe.From(func(w io.Writer) error { return nar.Dump(w, real) })
	defer rc.Close()
	if err := im.st.AddFromNAR(ctx, info, rc); err != nil {
		return fmt.Errorf("import source %s: %w", p, err)
	}
	return nil
}

// sourceInfo works out how p was added (by content, or as text referring to
// items of the closure) from the file at real, and fails if neither gives p.
func (im *importer) sourceInfo(p store.Path, real string) (*local.Info, error) {
	sum, err := nar.HashPath(real)
	if err != nil {
		return nil, err
	}
	h := store.Hash{Algo: store.SHA256, Digest: sum.SHA256[:]}
	if sp, err := im.dir.SourcePath(p.Name(), h, nil, false); err == nil && sp == p {
		return &local.Info{Path: p, Nar: sum, CA: "fixed:r:sha256:" + nixbase32.Encode(h.Digest)}, nil
	}
	fi, err := os.Lstat(real)
	if err != nil {
		return nil, err
	}
	if fi.Mode().IsRegular() && fi.Size() <= maxTextSource {
		data, err := os.ReadFile(real)
		if err != nil {
			return nil, err
		}
		cands, err := im.candidates()
		if err != nil {
			return nil, err
		}
		sc := local.NewScanner(slices.DeleteFunc(slices.Clone(cands), func(k store.Path) bool { return k == p }))
		sc.Write(data)
		refs := sc.Found()
		ch := sha256.Sum256(data)
		tp, err := im.dir.TextPath(p.Name(), store.Hash{Algo: store.SHA256, Digest: ch[:]}, refs)
		if err == nil && tp == p {
			return &local.Info{Path: p, Nar: sum, References: refs, CA: "text:sha256:" + nixbase32.Encode(ch[:])}, nil
		}
	}
	return nil, fmt.Errorf("%w: its path does not recompute from its contents", ErrBadDerivation)
}

// candidates lists the items in root, the paths a text source may refer to.
func (im *importer) candidates() ([]store.Path, error) {
	if im.known != nil {
		return im.known, nil
	}
	entries, err := os.ReadDir(im.root)
	if err != nil {
		return nil, err
	}
	im.known = make([]store.Path, 0, len(entries))
	for _, e := range entries {
		if p, err := im.dir.Join(e.Name()); err == nil {
			im.known = append(im.known, p)
		}
	}
	return im.known, nil
}
