package adminapi

import (
	"time"

	"github.com/tbfg/tbfg-node/scheduler"
)

// NewBuildView converts a build record of the replicated state to the
// object the admin API and the status server answer. Times are in UTC and
// nil until the build gets there; Outputs and Inputs are never null.
func NewBuildView(b scheduler.BuildInfo) BuildView {
	v := BuildView{ID: uint64(b.ID), Derivation: b.Drv, System: b.System, State: b.State.String(),
		Attempt: b.Attempt, Node: b.Node, LastNode: b.LastNode, Priority: b.Priority, Submitter: b.Submitter,
		Outputs: map[string]string{}, Inputs: b.Inputs, Message: b.Message,
		Submitted: timePtr(b.Submitted), Allocated: timePtr(b.Allocated), Started: timePtr(b.Started),
		Finished: timePtr(b.Finished), NotBefore: timePtr(b.NotBefore)}
	if b.State == scheduler.BuildFailedDependency {
		v.Cause = uint64(b.Cause)
	}
	if b.Reason != scheduler.ReasonNone {
		v.Reason = b.Reason.String()
	}
	if v.Inputs == nil {
		v.Inputs = []string{}
	}
	for _, o := range b.Outputs {
		v.Outputs[o.Name] = o.Path
	}
	return v
}

// timePtr is t in UTC, nil for the zero time.
func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}
