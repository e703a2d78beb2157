package scheduler

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Compaction: finished builds older than the farm's history leave the state.
// A compacted build keeps its id (ids are positions in submission order) but
// its record is gone: the slot in State.builds is nil and the read index marks
// it compacted. The items its outputs became stay, with their holders and
// narinfo, so substitutes are still served and a later submit of the same
// derivation finds its outputs available (it gets a new id, in state
// available). Its failed-output memory goes with it: a derivation whose
// failure is older than the history is built again when next submitted.

// CompactBatch is the most builds one Compact command drops: it bounds how
// long Apply holds the state's lock and keeps the change feed listing builds
// rather than resetting.
const CompactBatch = 2000

// ErrCompacted means a build id whose record was compacted: it finished
// longer ago than the history kept.
var ErrCompacted = errors.New("build compacted: finished longer ago than the history kept")

// compacted reports whether build index bi was compacted.
func (s *State) compacted(bi uint32) bool {
	return int(bi) < len(s.builds) && s.builds[bi] == nil
}

// Compacted reports whether build id existed and was compacted.
func (s *State) Compacted(id BuildID) bool {
	return id != 0 && s.compacted(uint32(id-1))
}

// NumCompacted is how many builds were compacted.
func (s *State) NumCompacted() int { return s.ix.compacted.count() }

// Compactable returns up to limit build ids (all if limit <= 0) that a
// Compact with this Before would drop, newest first: what the leader checks
// before proposing one.
func (s *State) Compactable(before time.Time, limit int) []BuildID {
	if limit <= 0 {
		limit = len(s.builds)
	}
	var out []BuildID
	for _, bi := range s.compactable(before.UnixNano(), limit) {
		out = append(out, BuildID(bi+1))
	}
	return out
}

// compactable chooses up to limit builds to compact, in descending index
// order. A build qualifies when it is done, finished before before, and no
// build that stays refers to it: not as a dependent, a failed-dependency
// cause, or the producer of an input path. Every reference points from a
// higher index to a lower one (inputs come first), so one pass from the
// newest build sees every referrer before the build it refers to.
func (s *State) compactable(before int64, limit int) []uint32 {
	pinned := make(bitset, (len(s.builds)+63)/64)
	chosen := make(bitset, len(pinned))
	var out []uint32
	for i := len(s.builds) - 1; i >= 0; i-- {
		bi := uint32(i)
		b := s.builds[bi]
		if b == nil {
			continue
		}
		if len(out) < limit && !pinned.has(bi) && b.state.Done() && b.finished < before &&
			s.dependentsGone(b, chosen) {
			chosen.set(bi)
			out = append(out, bi)
			continue
		}
		for _, p := range b.inputs {
			if pr := s.paths[p].producer; pr >= 0 {
				pinned.set(uint32(pr))
			}
		}
		if b.cause >= 0 {
			pinned.set(uint32(b.cause))
		}
	}
	return out
}

// dependentsGone reports whether every dependent of b is compacted or
// chosen for compaction.
func (s *State) dependentsGone(b *build, chosen bitset) bool {
	for _, di := range b.dependents {
		if s.builds[di] != nil && !chosen.has(di) {
			return false
		}
	}
	return true
}

// applyCompact drops the builds compactable chooses.
func (s *State) applyCompact(c *Compact) ([]byte, error) {
	if c.Max <= 0 || c.Before.IsZero() || c.Before.After(c.Time) {
		return nil, fmt.Errorf("compact: %w: needs a positive max and a cutoff not after its time", ErrInvalid)
	}
	s.now(c.Time)
	// Every member reads format 2 once a Compact is committed (the leader
	// proposes none before), so snapshots may use its layout from here on.
	s.format = max(s.format, commandFormat(TypeCompact))
	chosen := s.compactable(c.Before.UnixNano(), c.Max)
	for _, bi := range chosen {
		s.compactBuild(bi)
	}
	e := &encoder{}
	e.uvarint(uint64(len(chosen)))
	return e.buf, nil
}

// DecodeCompactResponse parses the response of a Compact command: how many
// builds it dropped.
func DecodeCompactResponse(b []byte) (int, error) {
	d := newDecoder(b, 0)
	n := d.uvarint()
	if err := d.end(); err != nil {
		return 0, err
	}
	return int(n), nil
}

// compactBuild drops build bi's record, keeping its outputs' items.
func (s *State) compactBuild(bi uint32) {
	s.touchBuild(bi)
	b := s.builds[bi]
	for _, o := range b.outputs {
		if s.paths[o.path].producer == int32(bi) {
			s.paths[o.path].producer = noProducer
		}
		if fb, ok := s.failed[o.path]; ok && fb == bi {
			delete(s.failed, o.path)
		}
	}
	for _, p := range b.inputs {
		if pr := s.paths[p].producer; pr >= 0 && s.builds[pr] != nil {
			s.builds[pr].dependents = removeSorted(s.builds[pr].dependents, bi)
		}
	}
	s.ix.drop(bi, b)
	delete(s.byDrv, b.drv)
	s.builds[bi] = nil
}

// drop removes build bi, about to be compacted, from the index.
func (ix *index) drop(bi uint32, b *build) {
	ix.remove(bi, b.system, b.state)
	ix.system(b.system).builds.unset(bi)
	ix.setNode(bi, b.last, 0)
	ix.compacted.set(bi)
	delete(ix.history, bi)
	if i := slices.Index(ix.recent, bi); i >= 0 {
		ix.recent = slices.Delete(ix.recent, i, i+1)
	}
}

func (c *Compact) encodeBody(e *encoder) {
	e.time(c.Time)
	e.time(c.Before)
	e.uvarint(uint64(max(c.Max, 0)))
}

func (c *Compact) decodeBody(d *decoder) {
	c.Time, c.Before = d.time(), d.time()
	n := d.uvarint()
	if n > 1<<30 {
		d.fail("compact max out of range")
	}
	c.Max = int(n)
}

// Format is the highest replicated format of any command applied so far: 2
// once a Compact was, and snapshots then keep the applied index (layout 3).
func (s *State) Format() int { return max(int(s.format), 1) }
