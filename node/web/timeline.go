package web

import (
	"fmt"
	"time"

	"github.com/tbfg/tbfg-node/node/adminapi"
)

// Clocks that stamp the steps of a build's timeline.
const (
	clockLeader  = "leader"
	clockBuilder = "builder"
)

// timelineStep is one step a build reached, as its page lists it.
type timelineStep struct {
	Name  string // as `builds --json` names it
	What  string // what happened, for a reader
	Clock string // clockLeader or clockBuilder
	At    time.Time
	// Delta is the time since the previous step reached ("" for the
	// first); Skewed says the two steps were stamped by different clocks.
	Delta  string
	Skewed bool
}

// timelineView is the timeline of a build's latest attempt: the leader's
// steps from the replicated state, then the builder's, in detail when this
// node ran the attempt (its agent's own stamps), else the two the builder
// committed.
type timelineView struct {
	Steps    []timelineStep
	Detailed bool   // the builder's steps are this node's own stamps
	Total    string // from the first step to the last
}

// newTimeline lists the steps v reached, in the order a build goes through
// them.
func newTimeline(v adminapi.BuildView) timelineView {
	steps := []timelineStep{
		{Name: "submitted", What: "submitted to the build queue", Clock: clockLeader},
		{Name: "allocated", What: "allocated to a node", Clock: clockLeader},
	}
	at := []*time.Time{v.Submitted, v.Allocated}
	tv := timelineView{Detailed: v.Timeline != nil}
	if tl := v.Timeline; tl != nil {
		steps = append(steps, builderSteps...)
		at = append(at, tl.Seen, tl.Fetched, tl.Exec, tl.Exited, tl.Published, tl.Committed)
	} else {
		steps = append(steps,
			timelineStep{Name: "started", What: "started, as the builder committed it", Clock: clockBuilder},
			timelineStep{Name: "finished", What: "finished, as the builder committed it", Clock: clockBuilder})
		at = append(at, v.Started, v.Finished)
	}
	for i, st := range steps {
		if at[i] == nil || at[i].IsZero() {
			continue
		}
		st.At = *at[i]
		if n := len(tv.Steps); n > 0 {
			prev := tv.Steps[n-1]
			st.Delta, st.Skewed = fineDuration(st.At.Sub(prev.At)), prev.Clock != st.Clock
		}
		tv.Steps = append(tv.Steps, st)
	}
	if n := len(tv.Steps); n > 1 {
		tv.Total = fineDuration(tv.Steps[n-1].At.Sub(tv.Steps[0].At))
	}
	return tv
}

// builderSteps are the steps of adminapi.Timeline, in its order.
var builderSteps = []timelineStep{
	{Name: "seen", What: "allocation seen by the builder", Clock: clockBuilder},
	{Name: "fetched", What: "derivation and inputs in the builder's store", Clock: clockBuilder},
	{Name: "exec", What: "builder process started", Clock: clockBuilder},
	{Name: "exited", What: "builder process exited", Clock: clockBuilder},
	{Name: "published", What: "outputs added to the store and signed", Clock: clockBuilder},
	{Name: "committed", What: "outcome committed to the build queue", Clock: clockBuilder},
}

// fineDuration is d to the precision a step of a build needs: "850 µs",
// "12.3 ms", "1.25 s", "3m04s"; negative (clocks apart) with a minus sign.
func fineDuration(d time.Duration) string {
	sign := ""
	if d < 0 {
		sign, d = "−", -d
	}
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%s%d µs", sign, d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%s%.1f ms", sign, float64(d)/float64(time.Millisecond))
	case d < time.Minute:
		return fmt.Sprintf("%s%.2f s", sign, d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%s%dm%02ds", sign, int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%s%dh%02dm", sign, int(d.Hours()), int(d.Minutes())%60)
}
