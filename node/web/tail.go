package web

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
)

// tailer follows the logs of running builds while some /events client wants
// their tails (the overview), keeping the last lines of each. flush sends
// the tails that changed, so however fast a build writes, each client gets
// at most one tail event per build per TailInterval.
type tailer struct {
	backend Backend
	hub     *hub
	log     *slog.Logger

	mu    sync.Mutex
	tails map[uint64]*tail
	wg    sync.WaitGroup // the followers
}

// tail is the end of one running build's log.
type tail struct {
	cancel  context.CancelFunc
	lines   []string // complete lines, at most tailLines
	partial string   // the line being written
	dirty   bool
}

func newTailer(b Backend, h *hub, log *slog.Logger) *tailer {
	return &tailer{backend: b, hub: h, log: log, tails: map[uint64]*tail{}}
}

// follow makes the followed builds exactly ids: it starts followers for new
// ones and stops those of builds no longer running.
func (t *tailer) follow(ctx context.Context, ids []uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, tl := range t.tails {
		if !slices.Contains(ids, id) {
			tl.cancel()
			delete(t.tails, id)
		}
	}
	for _, id := range ids {
		if t.tails[id] != nil {
			continue
		}
		fctx, cancel := context.WithCancel(ctx)
		tl := &tail{cancel: cancel}
		t.tails[id] = tl
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			t.read(fctx, id, tl)
		}()
	}
}

// read follows one log into its tail until the build ends or ctx does.
func (t *tailer) read(ctx context.Context, id uint64, tl *tail) {
	rc, _, err := t.backend.OpenLog(ctx, id, LogOptions{Offset: -tailBytes, Follow: true})
	if err != nil {
		t.log.Debug("tail build log", "build", id, "err", err)
		return
	}
	defer rc.Close()
	buf := make([]byte, logChunk)
	for {
		n, err := rc.Read(buf)
		if n > 0 {
			t.add(tl, string(buf[:n]))
		}
		if err != nil {
			return
		}
	}
}

// add appends text to a tail.
func (t *tailer) add(tl *tail, text string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	text = tl.partial + strings.ToValidUTF8(text, "\uFFFD")
	lines := strings.Split(text, "\n")
	tl.partial = lines[len(lines)-1]
	tl.lines = append(tl.lines, lines[:len(lines)-1]...)
	tl.lines = tl.lines[max(0, len(tl.lines)-tailLines):]
	tl.dirty = true
}

// TailEvent is the data of a tail event.
type TailEvent struct {
	ID    uint64   `json:"id"`
	Lines []string `json:"lines"`
}

// flush publishes the tails that changed since the last flush.
func (t *tailer) flush() {
	t.mu.Lock()
	var msgs [][]byte
	for _, id := range slices.Sorted(maps.Keys(t.tails)) {
		tl := t.tails[id]
		if !tl.dirty {
			continue
		}
		tl.dirty = false
		msgs = append(msgs, sseJSON("tail", "", TailEvent{ID: id, Lines: tl.view()}))
	}
	t.mu.Unlock()
	for _, m := range msgs {
		t.hub.publish(kindTail, m)
	}
}

// view is what a tail shows: its last lines, the one being written included.
func (tl *tail) view() []string {
	out := slices.Clone(tl.lines)
	if tl.partial != "" {
		out = append(out, tl.partial)
	}
	return out[max(0, len(out)-tailLines):]
}

// lines returns the tail of build id if it is followed.
func (t *tailer) lines(id uint64) ([]string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tl := t.tails[id]
	if tl == nil {
		return nil, false
	}
	return tl.view(), true
}

// stop stops every follower and waits for them.
func (t *tailer) stop() {
	t.mu.Lock()
	for id, tl := range t.tails {
		tl.cancel()
		delete(t.tails, id)
	}
	t.mu.Unlock()
	t.wg.Wait()
}
