package scheduler

import (
	"fmt"
	"strings"
	"time"
)

// lookupBuild resolves a build id or returns ErrUnknownBuild.
func (s *State) lookupBuild(id BuildID) (uint32, *build, error) {
	bi, ok := s.buildIndex(id)
	if !ok {
		if s.Compacted(id) {
			return 0, nil, fmt.Errorf("build %d: %w", id, ErrCompacted)
		}
		return 0, nil, fmt.Errorf("build %d: %w", id, ErrUnknownBuild)
	}
	return bi, s.builds[bi], nil
}

// lookupNode resolves a node id or returns ErrUnknownNode.
func (s *State) lookupNode(id string) (uint16, *member, error) {
	n, ok := s.nodeIndex(id)
	if !ok {
		return 0, nil, fmt.Errorf("node %q: %w", id, ErrUnknownNode)
	}
	return n, s.nodes[n], nil
}

// checkAllocation verifies one allocation against the state (the "verify" of
// plan/verify); extra counts allocations to the node earlier in the command.
func (s *State) checkAllocation(a Allocation, extra int, t int64) error {
	_, b, err := s.lookupBuild(a.Build)
	if err != nil {
		return err
	}
	_, m, err := s.lookupNode(a.Node)
	if err != nil {
		return err
	}
	switch {
	case b.state != BuildQueued:
		return fmt.Errorf("build %d is %s: %w", a.Build, b.state, ErrWrongState)
	case b.notBefore > t:
		return fmt.Errorf("build %d backs off until %s: %w", a.Build,
			time.Unix(0, b.notBefore).UTC().Format(time.RFC3339), ErrWrongState)
	case m.status != memberActive:
		return fmt.Errorf("node %s is %s: %w", a.Node, memberNames[m.status], ErrIneligible)
	case !containsSorted(m.systems, b.system):
		return fmt.Errorf("node %s does not build %s: %w", a.Node, s.names[b.system], ErrIneligible)
	case !subsetSorted(s.featureSets[b.features], m.features):
		return fmt.Errorf("node %s lacks features of build %d: %w", a.Node, a.Build, ErrIneligible)
	case m.active+extra >= m.maxBuilds:
		return fmt.Errorf("node %s already runs %d builds: %w", a.Node, m.maxBuilds, ErrIneligible)
	case !s.inputsAvailable(b):
		return fmt.Errorf("build %d: %w", a.Build, ErrInputsMissing)
	}
	return nil
}

// applyAllocate applies a plan, all or nothing.
func (s *State) applyAllocate(c *Allocate) error {
	t := max(s.last, c.Time.UnixNano())
	perNode := map[string]int{}
	seen := make(map[BuildID]bool, len(c.Allocations))
	for _, a := range c.Allocations {
		if seen[a.Build] {
			return fmt.Errorf("allocate build %d: %w: allocated twice in one command", a.Build, ErrInvalid)
		}
		seen[a.Build] = true
		if err := s.checkAllocation(a, perNode[a.Node], t); err != nil {
			return fmt.Errorf("allocate: %w", err)
		}
		perNode[a.Node]++
	}
	s.now(c.Time)
	for _, a := range c.Allocations {
		bi := uint32(a.Build - 1)
		b := s.builds[bi]
		n := s.byNode[a.Node]
		s.setState(bi, BuildAllocated)
		s.setLast(bi, n+1)
		b.node, b.allocated, b.started = n+1, t, 0
		b.attempt++
		s.nodes[n].active++
		s.touchNode(n)
	}
	return nil
}

// ownedBuild resolves a build that must be allocated to or running on node.
func (s *State) ownedBuild(id BuildID, node string) (uint32, *build, error) {
	bi, b, err := s.lookupBuild(id)
	if err != nil {
		return 0, nil, err
	}
	n, _, err := s.lookupNode(node)
	if err != nil {
		return 0, nil, err
	}
	if (b.state != BuildAllocated && b.state != BuildRunning) || b.node != n+1 {
		return 0, nil, fmt.Errorf("build %d is %s, not on node %s: %w", id, b.state, node, ErrWrongState)
	}
	return bi, b, nil
}

// applyStarted marks a build running. Repeating it is harmless, because a
// node may resend it across a leader change.
func (s *State) applyStarted(c *Started) error {
	bi, b, err := s.ownedBuild(c.Build, c.Node)
	if err != nil {
		return fmt.Errorf("started: %w", err)
	}
	t := s.now(c.Time)
	if b.state == BuildAllocated {
		s.setState(bi, BuildRunning)
		b.started = t
		s.touchNode(b.node - 1)
	}
	return nil
}

// applySucceeded records a build's outputs and wakes its dependents.
func (s *State) applySucceeded(c *Succeeded) error {
	if _, b, err := s.lookupBuild(c.Build); err == nil && b.state == BuildSucceeded &&
		b.node == 0 && s.holdsAll(c.Node, outPaths(b)) {
		return nil // a resent Succeeded for the same outputs
	}
	bi, b, err := s.ownedBuild(c.Build, c.Node)
	if err != nil {
		return fmt.Errorf("succeeded: %w", err)
	}
	if err := s.checkOutputs(b, c.Outputs); err != nil {
		return fmt.Errorf("succeeded build %d: %w", c.Build, err)
	}
	t := s.now(c.Time)
	n := b.node - 1
	s.touchBuild(bi)
	s.release(b)
	s.setState(bi, BuildSucceeded)
	b.finished, b.reason, b.message, b.notBefore = t, ReasonNone, "", 0
	for _, o := range b.outputs {
		delete(s.failed, o.path)
	}
	for _, it := range c.Outputs {
		s.replaceItem(it)
	}
	s.addHolder(n, c.Outputs)
	s.recover(bi)
	if c.TakeNext {
		s.takeNext(bi, n, t)
	}
	return nil
}

// holdsAll reports whether node holds every path.
func (s *State) holdsAll(node string, paths []uint32) bool {
	n, ok := s.nodeIndex(node)
	if !ok {
		return false
	}
	for _, p := range paths {
		if !containsSorted(s.paths[p].holders, n) {
			return false
		}
	}
	return true
}

// checkOutputs verifies that items describe exactly b's outputs.
func (s *State) checkOutputs(b *build, items []Item) error {
	if err := validateItems(items); err != nil {
		return err
	}
	if len(items) != len(b.outputs) {
		return fmt.Errorf("%w: %d outputs reported, derivation has %d", ErrInvalid, len(items), len(b.outputs))
	}
	// Each output must be reported exactly once: with a duplicate, another
	// output would never become available and its dependents would wait
	// forever.
	for _, o := range b.outputs {
		path := s.paths[o.path].path
		n := 0
		for _, it := range items {
			if it.Path == path {
				n++
			}
		}
		if n != 1 {
			return fmt.Errorf("%w: output %s of %s reported %d times, want exactly once", ErrInvalid, path, b.drv, n)
		}
	}
	return nil
}

// outPaths returns the paths of b's outputs.
func outPaths(b *build) []uint32 {
	out := make([]uint32, len(b.outputs))
	for i, o := range b.outputs {
		out[i] = o.path
	}
	return out
}

// replaceItem makes it the record for its path when a build produced a NAR
// different from the recorded one: copies of the old one no longer match, so
// their holders are dropped.
func (s *State) replaceItem(it Item) {
	p := s.path(it.Path)
	if e := &s.paths[p]; e.info != nil && e.info.NarHash != it.NarHash {
		e.info, e.holders = nil, nil
	}
}

// release frees b's node slot.
func (s *State) release(b *build) {
	if b.node == 0 {
		return
	}
	n := b.node - 1
	s.nodes[n].active--
	s.touchNode(n)
	b.node = 0
}

// applyFailed records a failure: transient ones re-queue with back-off until
// MaxAttempts, others are final and fail the dependents.
func (s *State) applyFailed(c *Failed) error {
	if c.Reason == ReasonNone || c.Reason >= reasonCount {
		return fmt.Errorf("failed build %d: %w: reason %d", c.Build, ErrInvalid, c.Reason)
	}
	bi, _, err := s.ownedBuild(c.Build, c.Node)
	if err != nil {
		return fmt.Errorf("failed: %w", err)
	}
	s.fail(bi, c.Reason, c.Message, s.now(c.Time), true)
	return nil
}

// fail ends an attempt of build bi; backoff says whether a transient retry
// waits.
func (s *State) fail(bi uint32, r Reason, msg string, t int64, backoff bool) {
	s.touchBuild(bi)
	b := s.builds[bi]
	s.release(b)
	b.reason, b.message = r, strings.Clone(msg)
	if r.Transient() && b.attempt < MaxAttempts {
		s.queue(bi)
		b.notBefore = t
		if backoff {
			b.notBefore = t + int64(backoffFor(b.attempt))
		}
		return
	}
	s.setState(bi, BuildFailed)
	b.finished = t
	if !r.Transient() {
		for _, o := range b.outputs {
			s.failed[o.path] = bi
		}
	}
	s.propagateFailure(bi, t)
}

// backoffFor is the wait after the attempt-th attempt failed transiently.
func backoffFor(attempt uint8) time.Duration {
	d := BackoffBase
	for i := uint8(1); i < attempt && d < BackoffMax; i++ {
		d *= 2
	}
	return min(d, BackoffMax)
}

// propagateFailure marks every waiting transitive dependent of bi that needs
// an unavailable output of it as failed-dependency.
func (s *State) propagateFailure(bi uint32, t int64) {
	s.walkDependents(bi, func(di uint32, d *build) bool {
		if d.state != BuildQueued && d.state != BuildBlocked {
			return false
		}
		cause, ok := s.failedInput(d)
		if ok {
			s.setState(di, BuildFailedDependency)
			d.cause, d.finished = int32(cause), t
		}
		return ok
	})
}

// recover re-queues failed-dependency builds that bi's success unblocks.
func (s *State) recover(bi uint32) {
	s.walkDependents(bi, func(di uint32, d *build) bool {
		if d.state != BuildFailedDependency {
			return false
		}
		if _, failed := s.failedInput(d); failed {
			return false
		}
		s.requeueFresh(di)
		return true
	})
}

// walkDependents calls visit on the dependents of bi, and on the dependents
// of each dependent for which visit returns true, depth first.
func (s *State) walkDependents(bi uint32, visit func(di uint32, d *build) bool) {
	work := []uint32{bi}
	for len(work) > 0 {
		cur := work[len(work)-1]
		work = work[:len(work)-1]
		for _, di := range s.builds[cur].dependents {
			if d := s.builds[di]; d != nil && visit(di, d) { // compacted dependents are done
				work = append(work, di)
			}
		}
	}
}

// checkBuilds checks that every id names a build.
func (s *State) checkBuilds(ids []BuildID) error {
	for _, id := range ids {
		if _, _, err := s.lookupBuild(id); err != nil {
			return err
		}
	}
	return nil
}

// applyCancel cancels unfinished builds; finished ones are left alone.
func (s *State) applyCancel(c *Cancel) error {
	if err := s.checkBuilds(c.Builds); err != nil {
		return fmt.Errorf("cancel: %w", err)
	}
	t := s.now(c.Time)
	for _, id := range c.Builds {
		b := s.builds[id-1]
		if b.state.Done() {
			continue
		}
		s.touchBuild(uint32(id - 1))
		s.release(b)
		s.setState(uint32(id-1), BuildCanceled)
		b.finished = t
		s.propagateFailure(uint32(id-1), t)
	}
	return nil
}

// applyRetry re-queues failed, canceled or failed-dependency builds; for the
// latter, the build that caused it is retried, and they follow when it
// succeeds.
func (s *State) applyRetry(c *Retry) error {
	if err := s.checkBuilds(c.Builds); err != nil {
		return fmt.Errorf("retry: %w", err)
	}
	s.now(c.Time)
	for _, id := range c.Builds {
		bi := uint32(id - 1)
		// Follow the chain of causes to the build that really failed.
		for i := 0; i < len(s.builds) && s.builds[bi].state == BuildFailedDependency && s.builds[bi].cause >= 0; i++ {
			bi = uint32(s.builds[bi].cause)
		}
		switch s.builds[bi].state {
		case BuildFailed, BuildCanceled:
			s.requeueFresh(bi)
		}
	}
	return nil
}
