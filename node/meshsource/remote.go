package meshsource

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/tbfg/tbfg-node/internal/pipe"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/local"
	"github.com/tbfg/tbfg-node/substitutes/publish"
)

// StoreRemote is the in-memory Remote: it reads NARs straight from the local
// stores of nodes running in the same process, as if over a peer stream.
type StoreRemote struct {
	mu     sync.RWMutex
	stores map[string]*local.Store
}

// NewStoreRemote returns a StoreRemote with no peers.
func NewStoreRemote() *StoreRemote {
	return &StoreRemote{stores: map[string]*local.Store{}}
}

// Add makes st the store of peer.
func (r *StoreRemote) Add(peer string, st *local.Store) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stores[peer] = st
}

// OpenNAR implements Remote.
func (r *StoreRemote) OpenNAR(_ context.Context, peer string, p store.Path) (io.ReadCloser, error) {
	r.mu.RLock()
	st, ok := r.stores[peer]
	r.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("peer %s: unknown", peer)
	}
	if valid, err := st.IsValid(p); err != nil || !valid {
		return nil, fmt.Errorf("NAR of %s on %s: %w", p, peer, publish.ErrNotFound)
	}
	return pipe.From(func(w io.Writer) error { return st.Dump(p, w) }), nil
}

// RemoteFunc adapts a function to a Remote.
type RemoteFunc func(ctx context.Context, peer string, p store.Path) (io.ReadCloser, error)

// OpenNAR calls f.
func (f RemoteFunc) OpenNAR(ctx context.Context, peer string, p store.Path) (io.ReadCloser, error) {
	return f(ctx, peer, p)
}
