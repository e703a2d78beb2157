package scheduler

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
)

// snapshotMagic starts every snapshot; snapshotVersion follows it. Version
// 2 added each member's Nix key and each build's last node; version 3 the
// Raft index of the last applied command and compacted builds (an empty
// .drv path and nothing else). Version 1 and 2 snapshots still load.
const (
	snapshotMagic   = "tbfg-scheduler\n"
	snapshotVersion = 3
)

// MarshalBinary writes the state's canonical encoding: the snapshot format.
// Two states are identical exactly when their encodings are equal, because
// every table is written in index order and the one map in sorted order.
func (s *State) MarshalBinary() ([]byte, error) {
	e := &encoder{buf: make([]byte, 0, 256+len(s.builds)*160)}
	e.buf = append(e.buf, snapshotMagic...)
	if s.format >= 2 {
		e.byte(snapshotVersion)
		e.uvarint(s.applied)
	} else {
		e.byte(2) // no compacted build can exist before format 2
	}
	e.varint(s.last)
	e.strs(s.names)
	e.count(len(s.featureSets))
	for _, fs := range s.featureSets {
		writeIdx(e, fs)
	}
	e.count(len(s.submissions))
	for _, sub := range s.submissions {
		e.str(sub.submitter)
		e.count(len(sub.tags))
		for _, t := range sub.tags {
			e.str(t.Key)
			e.str(t.Value)
		}
	}
	s.encodeNodes(e)
	s.encodePaths(e)
	s.encodeBuilds(e)
	keys := make([]uint32, 0, len(s.failed))
	for p := range s.failed {
		keys = append(keys, p)
	}
	slices.Sort(keys)
	e.count(len(keys))
	for _, p := range keys {
		e.uvarint(uint64(p))
		e.uvarint(uint64(s.failed[p]))
	}
	return e.buf, nil
}

func writeIdx[T uint16 | uint32](e *encoder, xs []T) {
	e.count(len(xs))
	for _, x := range xs {
		e.uvarint(uint64(x))
	}
}

func (s *State) encodeNodes(e *encoder) {
	e.count(len(s.nodes))
	for _, m := range s.nodes {
		e.str(m.id)
		e.str(m.key)
		writeIdx(e, m.systems)
		writeIdx(e, m.features)
		e.uvarint(uint64(m.maxBuilds))
		e.uvarint(uint64(m.active))
		e.byte(byte(m.status))
		e.varint(m.joined)
		e.str(m.nixKey)
	}
}

func (s *State) encodePaths(e *encoder) {
	e.count(len(s.paths))
	for i := range s.paths {
		p := &s.paths[i]
		e.str(p.path)
		e.varint(int64(p.producer))
		writeIdx(e, p.holders)
		e.boolean(p.info != nil)
		if p.info != nil {
			e.item(p.info)
		}
	}
}

func (s *State) encodeBuilds(e *encoder) {
	e.count(len(s.builds))
	for _, b := range s.builds {
		if b == nil {
			e.str("") // compacted
			continue
		}
		e.str(b.drv)
		e.count(len(b.outputs))
		for _, o := range b.outputs {
			e.uvarint(uint64(o.path))
			e.uvarint(uint64(o.name))
		}
		writeIdx(e, b.inputs)
		writeIdx(e, b.dependents)
		for _, t := range [...]int64{b.submitted, b.allocated, b.started, b.finished, b.notBefore} {
			e.varint(t)
		}
		e.varint(int64(b.priority))
		e.uvarint(uint64(b.submission))
		e.varint(int64(b.cause))
		e.uvarint(uint64(b.system))
		e.uvarint(uint64(b.features))
		e.uvarint(uint64(b.node))
		e.uvarint(uint64(b.last))
		e.byte(byte(b.state))
		e.byte(byte(b.reason))
		e.byte(b.attempt)
		e.str(b.message)
	}
}

// UnmarshalState decodes a snapshot written by MarshalBinary, checking every
// index so that a damaged snapshot is an error, never a panic later.
func UnmarshalState(data []byte) (*State, error) {
	if !bytes.HasPrefix(data, []byte(snapshotMagic)) {
		return nil, fmt.Errorf("%w: not a scheduler snapshot", ErrMalformed)
	}
	d := newDecoder(data, len(snapshotMagic))
	d.clone = true // the state outlives the snapshot buffer
	v := d.byte()
	if d.err == nil && (v < 1 || v > snapshotVersion) {
		return nil, fmt.Errorf("%w: snapshot version %d, this node reads 1 to %d", ErrVersion, v, snapshotVersion)
	}
	s := NewState()
	s.names, s.byName, s.featureSets, s.byFeatures = nil, map[string]uint32{}, nil, map[string]uint32{}
	if v >= 3 {
		s.applied = d.uvarint()
		s.format = 2
	}
	s.last = d.varint()
	s.names = d.strs()
	for i, n := range s.names {
		s.byName[n] = uint32(i)
	}
	for range d.count(1) {
		s.featureSets = append(s.featureSets, readIdx[uint32](d, len(s.names)))
	}
	for range d.count(2) {
		sub := submission{submitter: d.str()}
		for range d.count(2) {
			sub.tags = append(sub.tags, Tag{Key: d.str(), Value: d.str()})
		}
		s.submissions = append(s.submissions, sub)
	}
	s.decodeNodes(d, v)
	s.decodePaths(d)
	s.decodeBuilds(d, v)
	for range d.count(2) {
		p, b := d.uvarint(), d.uvarint()
		if p >= uint64(len(s.paths)) || b >= uint64(len(s.builds)) {
			d.fail("failed-output entry out of range")
		}
		s.failed[uint32(p)] = uint32(b)
	}
	if err := d.end(); err != nil {
		return nil, fmt.Errorf("restore snapshot: %w", err)
	}
	if err := s.reindex(); err != nil {
		return nil, fmt.Errorf("restore snapshot: %w", err)
	}
	s.rebuildIndex()
	return s, nil
}

// readIdx reads a list of indices that must be below limit.
func readIdx[T uint16 | uint32](d *decoder, limit int) []T {
	n := d.count(1)
	if n == 0 {
		return nil
	}
	out := make([]T, n)
	for i := range out {
		v := d.uvarint()
		if v >= uint64(limit) {
			d.fail(fmt.Sprintf("index %d out of range (%d)", v, limit))
			return nil
		}
		out[i] = T(v)
	}
	return out
}

func (d *decoder) below(limit int) uint32 {
	v := d.uvarint()
	if v >= uint64(limit) {
		d.fail(fmt.Sprintf("index %d out of range (%d)", v, limit))
		return 0
	}
	return uint32(v)
}

func (s *State) decodeNodes(d *decoder, version byte) {
	n := d.count(6)
	if n >= 1<<16 {
		d.fail("too many nodes")
		return
	}
	for range n {
		m := &member{id: d.str(), key: d.str(), systems: readIdx[uint32](d, len(s.names)),
			features: readIdx[uint32](d, len(s.names)), maxBuilds: int(d.below(1 << 16)),
			active: int(d.below(1 << 16)), status: memberStatus(d.below(int(memberLeft) + 1)), joined: d.varint()}
		if version >= 2 {
			m.nixKey = d.str()
		}
		s.nodes = append(s.nodes, m)
	}
}

func (s *State) decodePaths(d *decoder) {
	for range d.count(5) {
		p := pathEntry{path: d.str(), producer: int32(d.varint()), holders: readIdx[uint16](d, len(s.nodes))}
		if d.boolean() {
			it := d.item()
			p.info = &it
		}
		s.paths = append(s.paths, p)
	}
}

func (s *State) decodeBuilds(d *decoder, version byte) {
	np := len(s.paths)
	minSize := 20
	if version >= 3 {
		minSize = 1 // a compacted build is one byte
	}
	for range d.count(minSize) {
		b := &build{drv: d.str()}
		if b.drv == "" && version >= 3 {
			s.builds = append(s.builds, nil) // compacted
			continue
		}
		for range d.count(2) {
			b.outputs = append(b.outputs, outRef{path: d.below(np), name: d.below(len(s.names))})
		}
		b.inputs, b.dependents = readIdx[uint32](d, np), readIdx[uint32](d, 1<<31)
		b.submitted, b.allocated, b.started, b.finished, b.notBefore = d.varint(), d.varint(), d.varint(), d.varint(), d.varint()
		b.priority, b.submission, b.cause = d.int32(), d.below(len(s.submissions)), d.int32()
		b.system, b.features, b.node = d.below(len(s.names)), d.below(len(s.featureSets)), uint16(d.below(len(s.nodes)+1))
		if version >= 2 {
			b.last = uint16(d.below(len(s.nodes) + 1))
		}
		b.state, b.reason, b.attempt = BuildState(d.byte()), Reason(d.byte()), d.byte()
		b.message = d.str()
		s.builds = append(s.builds, b)
	}
}

// reindex rebuilds the lookup maps and checks cross-references.
func (s *State) reindex() error {
	nb := int32(len(s.builds))
	for i, b := range s.builds {
		if b == nil {
			continue // compacted
		}
		if b.drv == "" || b.state == 0 || b.state > BuildAvailable || b.reason >= reasonCount || b.cause < -1 ||
			b.cause >= nb || b.cause >= 0 && s.builds[b.cause] == nil {
			return fmt.Errorf("%w: build %d has a bad state, reason or cause", ErrMalformed, i+1)
		}
		for _, dep := range b.dependents {
			if dep >= uint32(nb) {
				return fmt.Errorf("%w: build %d has a bad dependent", ErrMalformed, i+1)
			}
		}
		s.byDrv[b.drv] = uint32(i)
	}
	for i, p := range s.paths {
		if p.producer < noProducer || p.producer >= nb || p.producer >= 0 && s.builds[p.producer] == nil {
			return fmt.Errorf("%w: path %s has a bad producer", ErrMalformed, p.path)
		}
		s.byPath[p.path] = uint32(i)
		if p.info != nil {
			s.byHash[hashPart(p.path)] = uint32(i)
		}
	}
	for _, bi := range s.failed {
		if s.builds[bi] == nil {
			return fmt.Errorf("%w: failed-output memory names compacted build %d", ErrMalformed, bi+1)
		}
	}
	for i, m := range s.nodes {
		s.byNode[m.id] = uint16(i)
	}
	for i, fs := range s.featureSets {
		var key strings.Builder
		for _, f := range fs {
			key.WriteString(s.names[f])
			key.WriteByte(0)
		}
		s.byFeatures[key.String()] = uint32(i)
	}
	if len(s.featureSets) == 0 {
		s.featureSet(nil)
	}
	return nil
}
