package webtest

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/tbfg/tbfg-node/node/adminapi"

	"github.com/hashicorp/raft"

	"github.com/tbfg/tbfg-node/node/web"
	"github.com/tbfg/tbfg-node/scheduler"
)

// Backend is an in-memory web.Backend over a real replica. It is safe for
// concurrent use.
type Backend struct {
	// FSM is the replica; pass it as web.Config.Replica.
	FSM *scheduler.FSM
	// Now stamps the commands; it starts at a fixed time and moves only
	// when a test sets it.
	Now func() time.Time

	mu     sync.Mutex
	index  uint64 // Raft index of the last command applied
	status adminapi.Status
	nodes  []adminapi.NodeView
	raft   web.RaftInfo
	logs   map[uint64][]byte
	tls    map[timelineKey]adminapi.Timeline
	wake   chan struct{} // closed and replaced when a log grows or a command applies
}

// Start is the time the commands of a new Backend are stamped with.
var Start = time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)

// New returns an empty backend: no member, no build, ready Raft state.
func New() *Backend {
	return &Backend{FSM: scheduler.NewFSM(nil), Now: func() time.Time { return Start },
		logs: map[uint64][]byte{}, wake: make(chan struct{})}
}

var _ web.Backend = (*Backend)(nil)

// Status implements web.Backend.
func (b *Backend) Status(context.Context) (adminapi.Status, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.status, nil
}

// Nodes implements web.Backend.
func (b *Backend) Nodes(context.Context) ([]adminapi.NodeView, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]adminapi.NodeView(nil), b.nodes...), nil
}

// Raft implements web.Backend.
func (b *Backend) Raft() web.RaftInfo {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.raft
}

// timelineKey names one attempt of a build.
type timelineKey struct {
	id      uint64
	attempt int
}

// Timeline implements web.Backend: what SetTimeline set for that attempt.
func (b *Backend) Timeline(id uint64, attempt int) (adminapi.Timeline, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	tl, ok := b.tls[timelineKey{id, attempt}]
	return tl, ok
}

// SetTimeline records tl as this node's timeline of attempt tl.Attempt of
// build id, as if this node had run it.
func (b *Backend) SetTimeline(id uint64, tl adminapi.Timeline) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tls == nil {
		b.tls = map[timelineKey]adminapi.Timeline{}
	}
	b.tls[timelineKey{id, tl.Attempt}] = tl
}

// SetStatus sets what Status returns.
func (b *Backend) SetStatus(s adminapi.Status) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.status = s
}

// SetNodes sets what Nodes returns.
func (b *Backend) SetNodes(nodes []adminapi.NodeView) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.nodes = nodes
}

// SetRaft sets what Raft returns.
func (b *Backend) SetRaft(r web.RaftInfo) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.raft = r
}

// Index is the Raft index of the last command applied.
func (b *Backend) Index() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.index
}

// Apply applies a command to the replica at the next Raft index, as Raft
// would, and returns the FSM's response or error.
func (b *Backend) Apply(c scheduler.Command) ([]byte, error) {
	b.mu.Lock()
	b.index++
	l := &raft.Log{Type: raft.LogCommand, Index: b.index, Data: scheduler.Encode(c)}
	b.mu.Unlock()
	resp := b.FSM.Apply(l)
	b.broadcast()
	switch r := resp.(type) {
	case error:
		return nil, r
	case []byte:
		return r, nil
	}
	return nil, nil
}

// Skip advances the Raft index without applying anything, as a follower
// that has not applied the latest entries yet looks to a reader.
func (b *Backend) Skip(n uint64) uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.index += n
	return b.index
}

func (b *Backend) broadcast() {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(b.wake)
	b.wake = make(chan struct{})
}

// AppendLog appends text to the log of build id.
func (b *Backend) AppendLog(id uint64, text string) {
	b.mu.Lock()
	b.logs[id] = append(b.logs[id], text...)
	b.mu.Unlock()
	b.broadcast()
}

// OpenLog implements web.Backend: a build has a log once AppendLog wrote to
// it; a following reader ends when the build is no longer allocated or
// running and everything was read.
func (b *Backend) OpenLog(ctx context.Context, id uint64, opts web.LogOptions) (io.ReadCloser, int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	log, ok := b.logs[id]
	if !ok {
		return nil, 0, fmt.Errorf("log of build %d: %w", id, web.ErrNotFound)
	}
	off := opts.Offset
	if off < 0 {
		off = max(0, int64(len(log))+off)
	}
	off = min(off, int64(len(log)))
	return &logReader{b: b, ctx: ctx, id: id, off: off, follow: opts.Follow}, off, nil
}

// logReader reads one log from the backend.
type logReader struct {
	b      *Backend
	ctx    context.Context
	id     uint64
	off    int64
	follow bool
}

func (r *logReader) Read(p []byte) (int, error) {
	for {
		r.b.mu.Lock()
		log, wake := r.b.logs[r.id], r.b.wake
		r.b.mu.Unlock()
		if r.off < int64(len(log)) {
			n := copy(p, log[r.off:])
			r.off += int64(n)
			return n, nil
		}
		if !r.follow || r.b.ended(r.id) {
			return 0, io.EOF
		}
		select {
		case <-wake:
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		}
	}
}

func (r *logReader) Close() error { return nil }

// ended reports whether build id is no longer allocated or running.
func (b *Backend) ended(id uint64) bool {
	ended := true
	b.FSM.Read(func(s *scheduler.State) {
		if info, ok := s.Build(scheduler.BuildID(id)); ok {
			ended = info.State != scheduler.BuildAllocated && info.State != scheduler.BuildRunning
		}
	})
	return ended
}
