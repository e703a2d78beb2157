package mesh

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/hashicorp/raft"
)

// RaftStats is this node's place in the Raft cluster, for status pages and
// metrics.
type RaftStats struct {
	// Member is true while this node is in its Raft configuration.
	Member bool
	// Leader is true while this node leads.
	Leader bool
	// LeaderID is the leader's peer ID, "" while none is known.
	LeaderID string
	// CommitIndex is the highest log index this node knows is committed.
	CommitIndex uint64
}

// RaftStats reports this node's Raft figures; zero before Raft runs and
// after Close.
func (m *Mesh) RaftStats() RaftStats {
	rn := m.raftNode()
	if rn == nil {
		return RaftStats{}
	}
	_, leader := rn.r.LeaderWithID()
	st := RaftStats{Leader: rn.r.State() == raft.Leader, LeaderID: string(leader), CommitIndex: rn.r.CommitIndex()}
	if self := m.ID(); self != "" {
		st.Member = slices.ContainsFunc(rn.configuration().Servers, func(s raft.Server) bool { return string(s.ID) == self })
	}
	return st
}

// WatchMembers wakes its reader when the Raft configuration (members and
// their suffrage) or the leader changes, as the membership loop sees them
// at each of its ticks. The channel holds at most one wake-up: a reader
// re-reads Members after each. It is closed when ctx ends or the mesh
// closes.
func (m *Mesh) WatchMembers(ctx context.Context) <-chan struct{} {
	return m.memberFeed.watch(ctx)
}

// memberSignature is what WatchMembers compares between ticks.
func memberSignature(cfg raft.Configuration, leader string) string {
	var b strings.Builder
	b.WriteString(leader)
	for _, s := range cfg.Servers {
		b.WriteString(" " + string(s.ID) + "/" + s.Suffrage.String())
	}
	return b.String()
}

// changeFeed wakes watchers when the value it is told differs from the
// last one.
type changeFeed struct {
	mu       sync.Mutex
	last     string
	watchers map[chan struct{}]func() bool
	closed   bool
}

func newChangeFeed() *changeFeed { return &changeFeed{watchers: map[chan struct{}]func() bool{}} }

// set records v and wakes every watcher if it changed; it never blocks.
func (f *changeFeed) set(v string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v == f.last {
		return
	}
	f.last = v
	for ch := range f.watchers {
		select {
		case ch <- struct{}{}:
		default: // a wake-up is pending already
		}
	}
}

// watch adds a watcher that ctx removes.
func (f *changeFeed) watch(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		close(ch)
		return ch
	}
	f.watchers[ch] = context.AfterFunc(ctx, func() { f.unwatch(ch) })
	return ch
}

func (f *changeFeed) unwatch(ch chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.watchers[ch]; ok {
		delete(f.watchers, ch)
		close(ch)
	}
}

// close ends every watch; later watches get a closed channel.
func (f *changeFeed) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for ch, stop := range f.watchers {
		stop()
		close(ch)
	}
	clear(f.watchers)
}
