package agent

import (
	"sync"
	"time"

	"github.com/tbfg/tbfg-node/scheduler"
)

// maxTimelines bounds the timelines an agent keeps: the most recent builds.
const maxTimelines = 4096

// Timeline is the part of a build's timeline only the node that ran it
// knows, read from its own clock: when the agent saw the allocation, when
// the inputs were in its store, when the builder started and exited, when
// the outputs were added and signed, and when the success or failure was
// committed. The leader-stamped times (submitted, allocated, started,
// finished) are in the replicated state. Zero means "not reached".
type Timeline struct {
	Attempt   int
	Seen      time.Time
	Fetched   time.Time
	Exec      time.Time
	Exited    time.Time
	Published time.Time
	Committed time.Time
}

// timelines keeps the latest attempt's Timeline of recent builds.
type timelines struct {
	mu    sync.Mutex
	byID  map[scheduler.BuildID]*Timeline
	order []scheduler.BuildID // insertion order, for eviction
}

// stamp sets the field set picks in id's timeline for attempt to now,
// starting a new timeline for a new attempt.
func (ts *timelines) stamp(id scheduler.BuildID, attempt int, now time.Time, set func(*Timeline) *time.Time) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.byID == nil {
		ts.byID = map[scheduler.BuildID]*Timeline{}
	}
	tl := ts.byID[id]
	if tl == nil || tl.Attempt != attempt {
		if tl == nil {
			ts.order = append(ts.order, id)
		}
		tl = &Timeline{Attempt: attempt}
		ts.byID[id] = tl
		for len(ts.order) > maxTimelines {
			delete(ts.byID, ts.order[0])
			ts.order = ts.order[1:]
		}
	}
	*set(tl) = now
}

// Timeline returns the node-local timeline of the latest attempt of build id
// that ran here, if the agent still has it.
func (a *Agent) Timeline(id scheduler.BuildID) (Timeline, bool) {
	a.timelines.mu.Lock()
	defer a.timelines.mu.Unlock()
	tl, ok := a.timelines.byID[id]
	if !ok {
		return Timeline{}, false
	}
	return *tl, true
}

// mark stamps one step of b's timeline with the agent's clock.
func (a *Agent) mark(b scheduler.BuildInfo, set func(*Timeline) *time.Time) {
	a.timelines.stamp(b.ID, b.Attempt, a.cfg.Now(), set)
}

func seen(t *Timeline) *time.Time      { return &t.Seen }
func fetched(t *Timeline) *time.Time   { return &t.Fetched }
func execd(t *Timeline) *time.Time     { return &t.Exec }
func exited(t *Timeline) *time.Time    { return &t.Exited }
func published(t *Timeline) *time.Time { return &t.Published }
func committed(t *Timeline) *time.Time { return &t.Committed }
