package local

import (
	"context"
	"slices"
	"sync"

	"github.com/tbfg/tbfg-node/store"
)

// Lock marks paths as being written and returns the function that releases
// them. It waits while any of them is held by another Lock or by AddFromNAR,
// and takes all of them at once, so two callers never deadlock. A build holds
// its outputs' lock from before the builder starts until Register or
// RemoveInvalid, so that nothing else writes or removes them meanwhile.
func (s *Store) Lock(ctx context.Context, paths ...store.Path) (unlock func(), err error) {
	paths = slices.Compact(slices.Sorted(slices.Values(paths)))
	for {
		s.mu.Lock()
		var busy chan struct{}
		for _, p := range paths {
			if ch, ok := s.locked[p]; ok {
				busy = ch
				break
			}
		}
		if busy == nil {
			return s.take(paths), nil // take unlocks s.mu
		}
		s.mu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// take records paths as locked; s.mu is held on entry and released on return.
func (s *Store) take(paths []store.Path) func() {
	done := make(chan struct{})
	for _, p := range paths {
		s.locked[p] = done
	}
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			for _, p := range paths {
				delete(s.locked, p)
			}
			s.mu.Unlock()
			close(done)
		})
	}
}
