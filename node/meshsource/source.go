package meshsource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"

	"github.com/tbfg/tbfg-node/internal/pipe"
	"github.com/tbfg/tbfg-node/node/buildlog"
	"github.com/tbfg/tbfg-node/scheduler"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/local"
	"github.com/tbfg/tbfg-node/substitutes/narinfo"
	"github.com/tbfg/tbfg-node/substitutes/publish"
)

// Remote opens the NAR of a store item held by another member. The mesh
// implements it over a libp2p stream; StoreRemote is the in-memory
// implementation for tests. What it returns is not trusted: Source's callers
// (the substitute server, Fetch) check it against the signed narinfo.
type Remote interface {
	// OpenNAR returns the uncompressed NAR of p as peer holds it.
	OpenNAR(ctx context.Context, peer string, p store.Path) (io.ReadCloser, error)
}

// Config configures a Source.
type Config struct {
	// Self is this node's ID (libp2p peer ID), never asked through Remote.
	Self string
	// FSM is this node's replica of the scheduler state.
	FSM *scheduler.FSM
	// Store is the node's local store.
	Store *local.Store
	// Remote reaches other holders; nil serves and fetches local items only.
	Remote Remote
	// Logs is the node's directory of build logs, which its agent writes;
	// nil means no logs here.
	Logs *buildlog.Dir
	// Logger receives failures of holders; nil discards.
	Logger *slog.Logger
}

// narinfoCacheMax bounds the cache of parsed narinfos; it is emptied when
// full, which is cheaper than LRU bookkeeping on every hit.
const narinfoCacheMax = 4096

// Source is a publish.Source over the replicated state, and the agent's
// Fetcher (Fetch). It is safe for concurrent use.
type Source struct {
	cfg Config
	dir store.Dir

	mu     sync.RWMutex
	parsed map[string]parsedNarinfo // by hash part
}

// parsedNarinfo is a record's narinfo text and its parse.
type parsedNarinfo struct {
	text string
	ni   *narinfo.Narinfo
}

var _ publish.Source = (*Source)(nil)

// New checks cfg and returns a Source.
func New(cfg Config) (*Source, error) {
	if cfg.FSM == nil || cfg.Store == nil {
		return nil, fmt.Errorf("%w: FSM and Store are required", ErrConfig)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Source{cfg: cfg, dir: cfg.Store.Dir(), parsed: map[string]parsedNarinfo{}}, nil
}

// record returns the state's record of an item by hash part or path.
func (s *Source) record(hashPart string, p store.Path) (scheduler.ItemInfo, bool) {
	var it scheduler.ItemInfo
	var ok bool
	s.cfg.FSM.Read(func(st *scheduler.State) {
		if p != "" {
			it, ok = st.Item(string(p))
		} else {
			it, ok = st.ItemByHash(hashPart)
		}
	})
	return it, ok && it.Narinfo != ""
}

// parse returns the parsed narinfo text of the record of hashPart, from the
// cache when the same text was parsed before. The result is shared and must
// not be modified. The cache is keyed by hash part and checked against the
// text: while the state keeps the record, the text is the same string, so
// the comparison costs no more than comparing two pointers, and a record
// replaced after a snapshot restore is parsed again.
func (s *Source) parse(hashPart, text string) (*narinfo.Narinfo, error) {
	s.mu.RLock()
	c, ok := s.parsed[hashPart]
	s.mu.RUnlock()
	if ok && c.text == text {
		return c.ni, nil
	}
	ni, err := narinfo.Parse([]byte(text), s.dir)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if len(s.parsed) >= narinfoCacheMax {
		clear(s.parsed)
	}
	s.parsed[hashPart] = parsedNarinfo{text: text, ni: ni}
	s.mu.Unlock()
	return ni, nil
}

// Narinfo implements publish.Source: the narinfo the item's first holder
// signed, for any item an active member holds.
func (s *Source) Narinfo(_ context.Context, hashPart string) (*narinfo.Narinfo, error) {
	it, ok := s.record(hashPart, "")
	if !ok || !it.Available && !s.validHere(store.Path(it.Path)) {
		return nil, fmt.Errorf("narinfo %s: %w: %w", hashPart, publish.ErrNotFound, ErrNotHeld)
	}
	ni, err := s.parse(hashPart, it.Narinfo)
	if err != nil {
		return nil, fmt.Errorf("narinfo %s recorded in the state: %w", hashPart, err)
	}
	return ni, nil
}

func (s *Source) validHere(p store.Path) bool {
	ok, err := s.cfg.Store.IsValid(p)
	return err == nil && ok
}

// OpenNAR implements publish.Source: the NAR from the local store when p is
// valid here, else from the first holder that answers.
func (s *Source) OpenNAR(ctx context.Context, p store.Path) (io.ReadCloser, error) {
	if s.validHere(p) {
		return s.dumpLocal(p), nil
	}
	it, ok := s.record("", p)
	if !ok {
		return nil, fmt.Errorf("NAR of %s: %w: %w", p, publish.ErrNotFound, ErrNotHeld)
	}
	return s.openRemote(ctx, p, it.Holders)
}

// OpenLocalNAR returns the NAR of p only if p is valid in the local store:
// what the mesh's handler of peer NAR requests serves, so that a request never
// travels on to a third node.
func (s *Source) OpenLocalNAR(p store.Path) (io.ReadCloser, error) {
	if !s.validHere(p) {
		return nil, fmt.Errorf("NAR of %s: not held here: %w", p, publish.ErrNotFound)
	}
	return s.dumpLocal(p), nil
}

// openRemote tries the holders in order (join order, the same on every
// node).
func (s *Source) openRemote(ctx context.Context, p store.Path, holders []string) (io.ReadCloser, error) {
	var errs []error
	for _, h := range holders {
		if h == s.cfg.Self {
			continue
		}
		if s.cfg.Remote == nil {
			return nil, fmt.Errorf("NAR of %s: %w", p, ErrNoRemote)
		}
		rc, err := s.cfg.Remote.OpenNAR(ctx, h, p)
		if err == nil {
			return rc, nil
		}
		s.cfg.Logger.Debug("holder failed to send a NAR", "path", p, "peer", h, "err", err)
		errs = append(errs, fmt.Errorf("from %s: %w", h, err))
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("NAR of %s: %w: %w", p, publish.ErrNotFound, ErrNotHeld)
	}
	return nil, fmt.Errorf("NAR of %s: %w", p, errors.Join(errs...))
}

// dumpLocal streams the NAR of a valid local item from a goroutine that
// Close stops and waits for.
func (s *Source) dumpLocal(p store.Path) io.ReadCloser {
	return pipe.From(func(w io.Writer) error { return s.cfg.Store.Dump(p, w) })
}

// Log implements publish.Source: the log of the derivation whose base name is
// base, or of the derivation that built the item of that base name, as it is
// written so far, from this node's log directory or from the member that
// ran its build (see BuildLog).
func (s *Source) Log(ctx context.Context, base string) (io.ReadCloser, error) {
	if err := store.ValidateBase(base); err != nil {
		return nil, fmt.Errorf("log of %q: %w: %w", base, publish.ErrNotFound, err)
	}
	if !strings.HasSuffix(base, ".drv") {
		it, ok := s.record(base[:store.HashLen], "")
		if !ok || it.Deriver == "" || store.Path(it.Path).Base() != base {
			return nil, fmt.Errorf("log of %s: no deriver known: %w", base, publish.ErrNotFound)
		}
		base = store.Path(it.Deriver).Base()
	}
	drv, err := s.dir.Join(base)
	if err != nil {
		return nil, fmt.Errorf("log of %q: %w: %w", base, publish.ErrNotFound, err)
	}
	var b scheduler.BuildInfo
	var ok bool
	s.cfg.FSM.Read(func(st *scheduler.State) { b, ok = st.BuildByDrv(string(drv)) })
	if !ok { // no build of it in the state: only a log of this node's
		rc, _, err := s.openLocalLog(ctx, base, 0, false)
		return rc, err
	}
	rc, _, err := s.openBuildLog(ctx, b, 0, false)
	return rc, err
}
