package scheduler

import (
	"fmt"
	"strings"
	"time"
)

// Apply decodes and applies one encoded command. It is deterministic: the
// result depends only on the state and the bytes (no clock, randomness or map
// iteration order). An invalid command returns an error and leaves the state
// unchanged: every command is validated completely before anything changes.
// An unknown command type carrying IgnoreUnknown is skipped.
func (s *State) Apply(cmd []byte) ([]byte, error) {
	s.fx = effects{}
	s.ix.begin(len(s.builds))
	c, err := Decode(cmd)
	if err != nil {
		if Ignorable(cmd) && len(cmd) >= 2 && newCommand(CommandType(cmd[0])&^IgnoreUnknown) == nil {
			return nil, nil
		}
		return nil, err
	}
	resp, err := s.applyCommand(c)
	if err == nil {
		s.finishIndex()
	}
	return resp, err
}

// applyCommand applies a decoded command.
func (s *State) applyCommand(c Command) ([]byte, error) {
	switch c := c.(type) {
	case *Submit:
		return s.applySubmit(c)
	case *Allocate:
		return nil, s.applyAllocate(c)
	case *Started:
		return nil, s.applyStarted(c)
	case *Succeeded:
		return nil, s.applySucceeded(c)
	case *Failed:
		return nil, s.applyFailed(c)
	case *Cancel:
		return nil, s.applyCancel(c)
	case *Retry:
		return nil, s.applyRetry(c)
	case *NodeLost:
		return nil, s.applyNodeLost(c)
	case *HolderAdded:
		return nil, s.applyHolderAdded(c)
	case *HolderRemoved:
		return nil, s.applyHolderRemoved(c)
	case *NodeJoined:
		return nil, s.applyNodeJoined(c)
	case *NodeLeft:
		return nil, s.applyNodeLeft(c)
	case *Compact:
		return s.applyCompact(c)
	}
	return nil, fmt.Errorf("%w: %T", ErrUnknownCommand, c)
}

// now turns a command's time into the state's clock, which never goes back:
// commands are stamped by whichever node created them, and clocks differ.
func (s *State) now(t time.Time) int64 {
	ns := int64(0)
	if !t.IsZero() {
		ns = t.UnixNano()
	}
	s.last = max(s.last, ns)
	return s.last
}

// submitPlan is what validating a Submit learned, so that applying it does
// not look everything up again.
type submitPlan struct {
	seen      map[string]int // derivation path → position in the command
	index     []uint32       // build index of each derivation, existing or to be
	producers []uint32       // build index of each input, all inputs in order
}

// validateSubmit checks a whole Submit before anything changes.
func (s *State) validateSubmit(c *Submit) (*submitPlan, error) {
	if len(c.Items) > 0 {
		if _, ok := s.nodeIndex(c.Node); !ok {
			return nil, fmt.Errorf("submit items held by %q: %w", c.Node, ErrUnknownNode)
		}
		if err := validateItems(c.Items); err != nil {
			return nil, err
		}
	}
	plan := &submitPlan{seen: make(map[string]int, len(c.Derivations)), index: make([]uint32, len(c.Derivations))}
	next := uint32(len(s.builds))
	for i := range c.Derivations {
		drv := &c.Derivations[i]
		if err := s.validateDerivation(drv, plan, c.Derivations); err != nil {
			return nil, fmt.Errorf("submit derivation %d (%s): %w", i, drv.Path, err)
		}
		plan.seen[drv.Path] = i
		if bi, ok := s.byDrv[drv.Path]; ok {
			plan.index[i] = bi
		} else {
			plan.index[i], next = next, next+1
		}
	}
	return plan, nil
}

// validateDerivation checks one derivation of a Submit; earlier ones of the
// same command are in plan.seen.
func (s *State) validateDerivation(drv *Derivation, plan *submitPlan, all []Derivation) error {
	if drv.Path == "" || drv.System == "" || len(drv.Outputs) == 0 {
		return fmt.Errorf("%w: derivation needs a path, a system and outputs", ErrInvalid)
	}
	if _, dup := plan.seen[drv.Path]; dup {
		return fmt.Errorf("%w: listed twice", ErrInvalid)
	}
	for i, o := range drv.Outputs {
		if o.Name == "" || o.Path == "" {
			return fmt.Errorf("%w: output %d has no name or path", ErrInvalid, i)
		}
		for _, p := range drv.Outputs[:i] {
			if p.Name == o.Name {
				return fmt.Errorf("%w: output %q listed twice", ErrInvalid, o.Name)
			}
		}
	}
	for _, in := range drv.Inputs {
		if err := s.validateInput(in, plan, all); err != nil {
			return err
		}
	}
	for _, src := range drv.Sources {
		if src == "" {
			return fmt.Errorf("%w: empty input source", ErrInvalid)
		}
	}
	return nil
}

// validateInput checks that an input derivation is known and has the outputs
// asked for, and records the build that produces it.
func (s *State) validateInput(in Input, plan *submitPlan, all []Derivation) error {
	if len(in.Outputs) == 0 {
		return fmt.Errorf("%w: input %s names no output", ErrInvalid, in.Drv)
	}
	i, inCommand := plan.seen[in.Drv]
	var bi uint32
	if inCommand {
		bi = plan.index[i]
	} else if known, ok := s.byDrv[in.Drv]; ok {
		bi = known
	} else {
		return fmt.Errorf("%w: %s (inputs must come first)", ErrUnknownDerivation, in.Drv)
	}
	for _, name := range in.Outputs {
		ok := false
		if inCommand {
			ok = outputIndex(all[i].Outputs, name) >= 0
		} else {
			_, ok = s.outputPath(s.builds[bi], name)
		}
		if !ok {
			return fmt.Errorf("%w: input %s has no output %q", ErrInvalid, in.Drv, name)
		}
	}
	plan.producers = append(plan.producers, bi)
	return nil
}

// validateItems checks items about to be registered.
func validateItems(items []Item) error {
	for i, it := range items {
		if it.Path == "" || it.NarHash == "" {
			return fmt.Errorf("item %d (%q): %w: needs a path and a NAR hash", i, it.Path, ErrInvalid)
		}
	}
	return nil
}

func outputIndex(outs []Output, name string) int {
	for i, o := range outs {
		if o.Name == name {
			return i
		}
	}
	return -1
}

// outputPath finds the path index of a build's named output.
func (s *State) outputPath(b *build, name string) (uint32, bool) {
	for _, o := range b.outputs {
		if s.names[o.name] == name {
			return o.path, true
		}
	}
	return 0, false
}

// applySubmit adds a graph. Derivations already known are shared (priority
// raised, re-queued if their outputs went missing); new ones are queued unless
// their outputs are available, known to fail, or an input failed.
func (s *State) applySubmit(c *Submit) ([]byte, error) {
	plan, err := s.validateSubmit(c)
	if err != nil {
		return nil, err
	}
	t := s.now(c.Time)
	if len(c.Items) > 0 {
		n, _ := s.nodeIndex(c.Node)
		s.addHolder(n, c.Items)
	}
	sub := uint32(len(s.submissions))
	s.submissions = append(s.submissions, submission{submitter: strings.Clone(c.Submitter), tags: cloneTags(c.Tags)})
	ids := make([]BuildID, len(c.Derivations))
	producers := plan.producers
	for i := range c.Derivations {
		drv := &c.Derivations[i]
		if bi := plan.index[i]; int(bi) < len(s.builds) {
			s.resubmit(bi, drv.Force, c.Priority, t)
		} else {
			s.addBuild(drv, producers[:len(drv.Inputs)], c.Priority, sub, t)
		}
		producers = producers[len(drv.Inputs):]
		ids[i] = BuildID(plan.index[i] + 1)
	}
	return encodeIDs(ids), nil
}

// addBuild creates the record of a new derivation and decides its state.
// producers are the builds of drv's inputs, as validation found them.
func (s *State) addBuild(drv *Derivation, producers []uint32, prio int32, sub uint32, t int64) {
	bi := uint32(len(s.builds))
	path := strings.Clone(drv.Path)
	b := &build{drv: path, priority: prio, submission: sub, submitted: t, cause: -1,
		system: s.name(drv.System), features: s.featureSet(drv.Features)}
	b.outputs = make([]outRef, len(drv.Outputs))
	for i, o := range drv.Outputs {
		p := s.path(o.Path)
		if s.paths[p].producer == noProducer {
			s.paths[p].producer = int32(bi)
		}
		b.outputs[i] = outRef{path: p, name: s.name(o.Name)}
	}
	b.inputs = s.resolveInputs(drv, producers, bi)
	s.builds = append(s.builds, b)
	s.byDrv[path] = bi
	s.initialState(bi, drv.Force, t)
}

// resolveInputs turns a derivation's inputs into path indices and records bi
// as a dependent of each input build.
func (s *State) resolveInputs(drv *Derivation, producers []uint32, bi uint32) []uint32 {
	n := len(drv.Sources)
	for _, in := range drv.Inputs {
		n += len(in.Outputs)
	}
	inputs := make([]uint32, 0, n)
	for k, in := range drv.Inputs {
		producer := s.builds[producers[k]]
		for _, name := range in.Outputs {
			p, _ := s.outputPath(producer, name)
			inputs = append(inputs, p)
		}
		// Dependents stay ascending because new builds get the highest index.
		if d := producer.dependents; len(d) == 0 || d[len(d)-1] != bi {
			producer.dependents = append(producer.dependents, bi)
		}
	}
	for _, src := range drv.Sources {
		inputs = append(inputs, s.path(src))
	}
	return inputs
}

// initialState sets the state of a newly added build.
func (s *State) initialState(bi uint32, force bool, t int64) {
	b := s.builds[bi]
	if !force && s.outputsAvailable(b) {
		s.setState(bi, BuildAvailable)
		b.finished = t
		return
	}
	if !force {
		for _, o := range b.outputs {
			if fb, ok := s.failed[o.path]; ok {
				// The same reason as the build that failed: build-error or timeout.
				s.setState(bi, BuildFailed)
				b.reason, b.finished = s.builds[fb].reason, t
				if b.reason == ReasonNone || b.reason.Transient() {
					b.reason = ReasonBuildError
				}
				b.message = fmt.Sprintf("output %s failed in build %d", s.paths[o.path].path, fb+1)
				return
			}
		}
	}
	s.queue(bi)
}

// failedInput finds an input that is unavailable and whose producer failed or
// was canceled, so b cannot run until it is retried.
func (s *State) failedInput(b *build) (uint32, bool) {
	for _, p := range b.inputs {
		pr := s.paths[p].producer
		if pr == noProducer || s.available(p) {
			continue
		}
		switch s.builds[pr].state {
		case BuildFailed, BuildCanceled, BuildFailedDependency:
			return uint32(pr), true
		}
	}
	return 0, false
}

// queue puts b in the queue, or blocks it if no member builds its system,
// or fails it (and what waits for it) as a dependent if an input it still
// needs failed.
func (s *State) queue(bi uint32) {
	b := s.builds[bi]
	s.setState(bi, BuildQueued)
	b.cause, b.node = -1, 0
	if cause, ok := s.failedInput(b); ok {
		s.setState(bi, BuildFailedDependency)
		b.cause, b.finished = int32(cause), s.last
		s.propagateFailure(bi, s.last)
		return
	}
	if !s.served(b.system) {
		s.setState(bi, BuildBlocked)
	}
}

// requeueFresh re-queues b as if newly submitted: attempts and failure
// forgotten.
func (s *State) requeueFresh(bi uint32) {
	s.touchBuild(bi)
	b := s.builds[bi]
	for _, o := range b.outputs {
		delete(s.failed, o.path)
	}
	b.attempt, b.reason, b.message, b.notBefore, b.finished = 0, ReasonNone, "", 0, 0
	s.queue(bi)
}

// resubmit handles a derivation submitted again.
func (s *State) resubmit(bi uint32, force bool, prio int32, t int64) {
	b := s.builds[bi]
	b.priority = max(b.priority, prio)
	switch b.state {
	case BuildSucceeded, BuildAvailable:
		if force || !s.outputsAvailable(b) {
			s.requeueFresh(bi)
		}
	case BuildFailed:
		if force || b.reason.Transient() {
			s.requeueFresh(bi)
		}
	case BuildCanceled:
		s.requeueFresh(bi)
	case BuildFailedDependency:
		if _, failed := s.failedInput(b); !failed {
			s.requeueFresh(bi)
		} else if s.outputsAvailable(b) {
			s.setState(bi, BuildAvailable) // built elsewhere meanwhile
			b.cause, b.finished = -1, t
		}
	}
}
