package replicate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/queuetest"
	"github.com/tbfg/tbfg-node/internal/testlog"
	"github.com/tbfg/tbfg-node/scheduler"
	"github.com/tbfg/tbfg-node/store"
)

var errFetch = errors.New("no holder answers")

// mesh is a replicated state shared by every replicator of a test: what
// Raft would give each node, without Raft.
type mesh struct{ *queuetest.Queue }

// newMesh registers members in a new state, each building one at a time.
func newMesh(t testing.TB, members ...string) *mesh {
	m := &mesh{queuetest.New(t, nil)}
	for _, id := range members {
		m.Join(t, id, "key-"+id, 1)
	}
	return m
}

// hold records node as a holder of items.
func (m *mesh) hold(t testing.TB, node string, items ...scheduler.Item) {
	t.Helper()
	m.Apply(t, &scheduler.HolderAdded{Time: time.Now(), Node: node, Items: items})
}

// holders returns the active holders of path.
func (m *mesh) holders(path string) []string {
	var hs []string
	m.FSM.Read(func(s *scheduler.State) {
		if it, ok := s.Item(path); ok {
			hs = it.Holders
		}
	})
	return hs
}

// active returns the active members.
func (m *mesh) active() []string {
	var out []string
	m.FSM.Read(func(s *scheduler.State) { out = activeMembers(s) })
	return out
}

// storePath makes a well-formed store path for a name.
func storePath(name string) string {
	const alphabet = "0123456789abcdfghijklmnpqrsvwxyz"
	h := hashString(name)
	var b [32]byte
	for i := range b {
		h = mix(h + uint64(i))
		b[i] = alphabet[h%32]
	}
	return "/gnu/store/" + string(b[:]) + "-" + name
}

// item makes the record of a store item with a signed narinfo.
func item(name string, refs ...string) scheduler.Item {
	p := storePath(name)
	it := scheduler.Item{Path: p, NarHash: "sha256:" + p[11:43] + "0000000000000000000", NarSize: 120,
		Narinfo: "StorePath: " + p + "\n", Signature: "sig"}
	for _, r := range refs {
		it.References = append(it.References, storePath(r))
	}
	return it
}

// fetcher is a Fetcher that records what it was asked for and fails while
// fail is set. A fetch takes delay, as a transfer would.
type fetcher struct {
	mu    sync.Mutex
	calls []string
	fail  bool
	delay time.Duration
}

func (f *fetcher) Fetch(ctx context.Context, paths ...store.Path) error {
	if f.delay > 0 {
		t := time.NewTimer(f.delay)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range paths {
		f.calls = append(f.calls, string(p))
	}
	if f.fail {
		return fmt.Errorf("fetch %s: %w", paths[0], errFetch)
	}
	return ctx.Err()
}

func (f *fetcher) fetched() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fetcher) setFail(fail bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = fail
}

// flakyApplier rejects every command while fail is set, else applies it.
type flakyApplier struct {
	next scheduler.Applier
	fail atomic.Bool
}

func (a *flakyApplier) Apply(ctx context.Context, cmd []byte) ([]byte, error) {
	if a.fail.Load() {
		return nil, errors.New("no leader")
	}
	return a.next.Apply(ctx, cmd)
}

// started is a replicator running in a goroutine of the test.
type started struct {
	r    *Replicator
	f    *fetcher
	stop context.CancelFunc
	done chan error
}

// start runs a replicator for node over m with a recording fetcher; edit,
// if not nil, changes its configuration first.
func start(t *testing.T, m *mesh, node string, edit func(*Config)) *started {
	t.Helper()
	f := &fetcher{}
	cfg := Config{Node: node, FSM: m.FSM, Applier: m.Applier, Fetcher: f, Logger: testlog.New(t, node)}
	if edit != nil {
		edit(&cfg)
	}
	f, _ = cfg.Fetcher.(*fetcher)
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &started{r: r, f: f, stop: cancel, done: make(chan error, 1)}
	go func() { s.done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-s.done
	})
	return s
}
