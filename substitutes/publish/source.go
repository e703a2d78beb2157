package publish

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/substitutes/narinfo"
)

// Errors of the package.
var (
	// ErrNotFound is wrapped by a Source for an item, NAR or log it does not
	// have; the server answers 404.
	ErrNotFound = errors.New("not found")
	// ErrNARMismatch is wrapped by the error of a NAR stream whose size or
	// hash differs from its narinfo's NarSize and NarHash.
	ErrNARMismatch = errors.New("NAR does not match its narinfo")
	// ErrConfig is wrapped by New for an unusable Config.
	ErrConfig = errors.New("invalid substitute server configuration")
)

// Source is what the server publishes. Its methods are called concurrently.
type Source interface {
	// Narinfo returns the signed narinfo of the store item whose hash part
	// is hashPart, as the item's builder made it, or an error wrapping
	// ErrNotFound. The server does not modify the returned value.
	Narinfo(ctx context.Context, hashPart string) (*narinfo.Narinfo, error)
	// OpenNAR returns the uncompressed NAR of p, or an error wrapping
	// ErrNotFound. It may come from a remote holder: the server checks it
	// against the narinfo.
	OpenNAR(ctx context.Context, p store.Path) (io.ReadCloser, error)
	// Log returns the build log, as text, of the derivation whose base name
	// is base or that has an output of that base name, or an error wrapping
	// ErrNotFound.
	Log(ctx context.Context, base string) (io.ReadCloser, error)
}

// MemSource is a Source held in memory, for tests and small fixed sets of
// items. The zero value is not usable; call NewMemSource.
type MemSource struct {
	mu       sync.RWMutex
	narinfos map[string]*narinfo.Narinfo // by hash part
	nars     map[store.Path][]byte
	logs     map[string][]byte // by base name
}

// NewMemSource returns an empty MemSource.
func NewMemSource() *MemSource {
	return &MemSource{
		narinfos: map[string]*narinfo.Narinfo{},
		nars:     map[store.Path][]byte{},
		logs:     map[string][]byte{},
	}
}

// Add publishes the item described by ni, whose NAR is nar (nil to publish
// the narinfo alone). Neither is copied; the caller must not modify them.
func (m *MemSource) Add(ni *narinfo.Narinfo, nar []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.narinfos[ni.StorePath.HashPart()] = ni
	if nar != nil {
		m.nars[ni.StorePath] = nar
	}
}

// AddLog publishes text as the build log found under base.
func (m *MemSource) AddLog(base string, text []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.logs[base] = text
}

// Narinfo implements Source.
func (m *MemSource) Narinfo(_ context.Context, hashPart string) (*narinfo.Narinfo, error) {
	m.mu.RLock()
	ni, ok := m.narinfos[hashPart]
	m.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("narinfo %s: %w", hashPart, ErrNotFound)
	}
	return ni, nil
}

// OpenNAR implements Source.
func (m *MemSource) OpenNAR(_ context.Context, p store.Path) (io.ReadCloser, error) {
	m.mu.RLock()
	nar, ok := m.nars[p]
	m.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("NAR of %s: %w", p, ErrNotFound)
	}
	return io.NopCloser(bytes.NewReader(nar)), nil
}

// Log implements Source.
func (m *MemSource) Log(_ context.Context, base string) (io.ReadCloser, error) {
	m.mu.RLock()
	text, ok := m.logs[base]
	m.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("log of %s: %w", base, ErrNotFound)
	}
	return io.NopCloser(bytes.NewReader(text)), nil
}
