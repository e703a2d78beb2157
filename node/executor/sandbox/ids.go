package sandbox

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// IDRange is a range of host uids, used with the same numbers as gids, that
// builds run as: one each, never two builds at once.
type IDRange struct {
	First uint32
	Count uint32
}

// DefaultIDs is the range used when none is configured: 256 ids from
// 0x70000000, where systemd's table of uid ranges (UIDS-GIDS.md) leaves
// ids unused, above the ranges of containers and below those that many
// tools misread as negative. Nix's build users (30001…) and its
// auto-allocated ids (872415232…) are elsewhere, so a Nix daemon on the
// same machine never shares one with a build of this node.
var DefaultIDs = IDRange{First: 0x70000000, Count: 256}

// String is the range as FIRST-LAST, as ParseIDRange reads it.
func (r IDRange) String() string {
	return fmt.Sprintf("%d-%d", r.First, r.Last())
}

// Last is the last id of the range.
func (r IDRange) Last() uint32 { return r.First + r.Count - 1 }

// ParseIDRange reads FIRST-LAST (both included). Root's id 0 and the ids
// 65534 (nobody) and 2^32-1 (invalid) may not be in it.
func ParseIDRange(s string) (IDRange, error) {
	first, last, ok := strings.Cut(strings.TrimSpace(s), "-")
	f, err1 := strconv.ParseUint(first, 10, 32)
	l, err2 := strconv.ParseUint(last, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return IDRange{}, fmt.Errorf("ids %q: want FIRST-LAST, two decimal ids", s)
	}
	switch {
	case f > l:
		return IDRange{}, fmt.Errorf("ids %q: first id above the last", s)
	case f == 0:
		return IDRange{}, fmt.Errorf("ids %q: includes root's id 0", s)
	case f <= 65534 && l >= 65534:
		return IDRange{}, fmt.Errorf("ids %q: includes 65534, the id of nobody", s)
	case l >= math.MaxUint32:
		return IDRange{}, fmt.Errorf("ids %q: includes %d, which is not a valid id", s, uint32(math.MaxUint32))
	}
	return IDRange{First: uint32(f), Count: uint32(l-f) + 1}, nil
}

// lease is the host uid and gid one build runs as, held until release.
type lease struct {
	uid, gid uint32
	release  func()
}

// idPool hands out ids of a range to one build at a time. Within the process
// a slot per id says which are taken; across processes (two nodes on one
// machine) each id's lock file in dir, locked with flock, does.
type idPool struct {
	r   IDRange
	dir string

	mu    sync.Mutex
	inUse map[uint32]bool
	freed chan struct{} // closed and replaced whenever an id is released
}

func newIDPool(r IDRange, dir string) (*idPool, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("build id lock directory: %w", err)
	}
	return &idPool{r: r, dir: dir, inUse: map[uint32]bool{}, freed: make(chan struct{})}, nil
}

// errNoIDs means every id of the range is held by another process.
var errNoIDs = errors.New("every build id is in use by another process")

// acquire returns a free id, waiting while this process holds them all.
func (p *idPool) acquire(ctx context.Context) (lease, error) {
	for {
		p.mu.Lock()
		l, wait, err := p.tryLocked()
		p.mu.Unlock()
		if wait == nil {
			return l, err
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return lease{}, ctx.Err()
		}
	}
}

// tryLocked takes the first id free here and unlocked elsewhere; when this
// process holds every id it returns a channel closed at the next release.
func (p *idPool) tryLocked() (lease, <-chan struct{}, error) {
	free := 0
	for i := range p.r.Count {
		id := p.r.First + i
		if p.inUse[id] {
			continue
		}
		free++
		f, err := p.lockFile(id)
		if errors.Is(err, unix.EWOULDBLOCK) {
			continue
		}
		if err != nil {
			return lease{}, nil, err
		}
		p.inUse[id] = true
		return lease{uid: id, gid: id, release: func() { p.release(id, f) }}, nil, nil
	}
	if free > 0 {
		return lease{}, nil, fmt.Errorf("%w (%s, locks in %s)", errNoIDs, p.r, p.dir)
	}
	return lease{}, p.freed, nil
}

// lockFile opens and locks id's lock file without waiting.
func (p *idPool) lockFile(id uint32) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(p.dir, strconv.FormatUint(uint64(id), 10)), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("build id lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, err
		}
		return nil, fmt.Errorf("build id lock: %w", err)
	}
	return f, nil
}

func (p *idPool) release(id uint32, f *os.File) {
	f.Close() // drops the flock
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.inUse, id)
	close(p.freed)
	p.freed = make(chan struct{})
}
