package scheduler

import "time"

// Body layouts of the commands, version 1. Every field is written in
// declaration order; times are Unix nanoseconds.

func (e *encoder) time(t time.Time) {
	if t.IsZero() {
		e.varint(0)
		return
	}
	e.varint(t.UnixNano())
}

func (d *decoder) time() time.Time {
	ns := d.varint()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

func (e *encoder) item(it *Item) {
	e.str(it.Path)
	e.str(it.NarHash)
	e.uvarint(it.NarSize)
	e.strs(it.References)
	e.str(it.Deriver)
	e.str(it.System)
	e.str(it.Narinfo)
	e.str(it.Signature)
}

func (d *decoder) item() Item {
	return Item{Path: d.str(), NarHash: d.str(), NarSize: d.uvarint(), References: d.strs(),
		Deriver: d.str(), System: d.str(), Narinfo: d.str(), Signature: d.str()}
}

func (e *encoder) items(its []Item) {
	e.count(len(its))
	for i := range its {
		e.item(&its[i])
	}
}

func (d *decoder) items() []Item {
	n := d.count(8)
	if n == 0 {
		return nil
	}
	out := make([]Item, n)
	for i := range out {
		out[i] = d.item()
	}
	return out
}

func (e *encoder) ids(ids []BuildID) {
	e.count(len(ids))
	for _, id := range ids {
		e.uvarint(uint64(id))
	}
}

func (d *decoder) ids() []BuildID {
	n := d.count(1)
	if n == 0 {
		return nil
	}
	out := make([]BuildID, n)
	for i := range out {
		out[i] = BuildID(d.uvarint())
	}
	return out
}

func (e *encoder) derivation(drv *Derivation) {
	e.str(drv.Path)
	e.str(drv.System)
	e.count(len(drv.Outputs))
	for _, o := range drv.Outputs {
		e.str(o.Name)
		e.str(o.Path)
	}
	e.count(len(drv.Inputs))
	for _, in := range drv.Inputs {
		e.str(in.Drv)
		e.strs(in.Outputs)
	}
	e.strs(drv.Sources)
	e.strs(drv.Features)
	e.boolean(drv.Force)
}

func (d *decoder) derivation() Derivation {
	drv := Derivation{Path: d.str(), System: d.str()}
	if n := d.count(2); n > 0 {
		drv.Outputs = make([]Output, n)
		for i := range drv.Outputs {
			drv.Outputs[i] = Output{Name: d.str(), Path: d.str()}
		}
	}
	if n := d.count(2); n > 0 {
		drv.Inputs = make([]Input, n)
		for i := range drv.Inputs {
			drv.Inputs[i] = Input{Drv: d.str(), Outputs: d.strs()}
		}
	}
	drv.Sources = d.strs()
	drv.Features = d.strs()
	drv.Force = d.boolean()
	return drv
}

func (c *Submit) encodeBody(e *encoder) {
	e.time(c.Time)
	e.str(c.Submitter)
	e.str(c.Node)
	e.varint(int64(c.Priority))
	e.count(len(c.Tags))
	for _, t := range c.Tags {
		e.str(t.Key)
		e.str(t.Value)
	}
	e.count(len(c.Derivations))
	for i := range c.Derivations {
		e.derivation(&c.Derivations[i])
	}
	e.items(c.Items)
}

func (c *Submit) decodeBody(d *decoder) {
	c.Time, c.Submitter, c.Node, c.Priority = d.time(), d.str(), d.str(), d.int32()
	if n := d.count(2); n > 0 {
		c.Tags = make([]Tag, n)
		for i := range c.Tags {
			c.Tags[i] = Tag{Key: d.str(), Value: d.str()}
		}
	}
	if n := d.count(7); n > 0 {
		c.Derivations = make([]Derivation, n)
		for i := range c.Derivations {
			c.Derivations[i] = d.derivation()
		}
	}
	c.Items = d.items()
}

func (c *Allocate) encodeBody(e *encoder) {
	e.time(c.Time)
	e.count(len(c.Allocations))
	for _, a := range c.Allocations {
		e.uvarint(uint64(a.Build))
		e.str(a.Node)
	}
}

func (c *Allocate) decodeBody(d *decoder) {
	c.Time = d.time()
	if n := d.count(2); n > 0 {
		c.Allocations = make([]Allocation, n)
		for i := range c.Allocations {
			c.Allocations[i] = Allocation{Build: BuildID(d.uvarint()), Node: d.str()}
		}
	}
}

func (c *Started) encodeBody(e *encoder) { e.time(c.Time); e.uvarint(uint64(c.Build)); e.str(c.Node) }
func (c *Started) decodeBody(d *decoder) {
	c.Time, c.Build, c.Node = d.time(), BuildID(d.uvarint()), d.str()
}

func (c *Succeeded) encodeBody(e *encoder) {
	e.time(c.Time)
	e.uvarint(uint64(c.Build))
	e.str(c.Node)
	e.items(c.Outputs)
}

func (c *Succeeded) decodeBody(d *decoder) {
	c.Time, c.Build, c.Node, c.Outputs = d.time(), BuildID(d.uvarint()), d.str(), d.items()
}

func (c *Failed) encodeBody(e *encoder) {
	e.time(c.Time)
	e.uvarint(uint64(c.Build))
	e.str(c.Node)
	e.byte(byte(c.Reason))
	e.str(c.Message)
}

func (c *Failed) decodeBody(d *decoder) {
	c.Time, c.Build, c.Node = d.time(), BuildID(d.uvarint()), d.str()
	c.Reason, c.Message = Reason(d.byte()), d.str()
}

func (c *Cancel) encodeBody(e *encoder) { e.time(c.Time); e.ids(c.Builds) }
func (c *Cancel) decodeBody(d *decoder) { c.Time, c.Builds = d.time(), d.ids() }
func (c *Retry) encodeBody(e *encoder)  { e.time(c.Time); e.ids(c.Builds) }
func (c *Retry) decodeBody(d *decoder)  { c.Time, c.Builds = d.time(), d.ids() }

func (c *NodeLost) encodeBody(e *encoder) { e.time(c.Time); e.str(c.Node) }
func (c *NodeLost) decodeBody(d *decoder) { c.Time, c.Node = d.time(), d.str() }
func (c *NodeLeft) encodeBody(e *encoder) { e.time(c.Time); e.str(c.Node) }
func (c *NodeLeft) decodeBody(d *decoder) { c.Time, c.Node = d.time(), d.str() }

func (c *HolderAdded) encodeBody(e *encoder) { e.time(c.Time); e.str(c.Node); e.items(c.Items) }
func (c *HolderAdded) decodeBody(d *decoder) { c.Time, c.Node, c.Items = d.time(), d.str(), d.items() }

func (c *HolderRemoved) encodeBody(e *encoder) { e.time(c.Time); e.str(c.Node); e.strs(c.Paths) }
func (c *HolderRemoved) decodeBody(d *decoder) { c.Time, c.Node, c.Paths = d.time(), d.str(), d.strs() }

func (c *NodeJoined) encodeBody(e *encoder) {
	e.time(c.Time)
	e.str(c.Node)
	e.str(c.Key)
	e.strs(c.Systems)
	e.strs(c.Features)
	e.uvarint(uint64(max(c.MaxBuilds, 0)))
	if c.NixKey != "" {
		e.str(c.NixKey)
	}
}

func (c *NodeJoined) decodeBody(d *decoder) {
	c.Time, c.Node, c.Key, c.Systems, c.Features = d.time(), d.str(), d.str(), d.strs(), d.strs()
	n := d.uvarint()
	if n > 1<<16 {
		d.fail("max builds out of range")
	}
	c.MaxBuilds = int(n)
	if d.more() {
		// Present only when set, so that every command has one encoding.
		if c.NixKey = d.str(); c.NixKey == "" {
			d.fail("empty Nix key")
		}
	}
}

// encodeIDs writes the response of a Submit: the build ids of its
// derivations, in command order.
func encodeIDs(ids []BuildID) []byte {
	e := &encoder{}
	e.ids(ids)
	return e.buf
}

// DecodeSubmitResponse parses the response of a Submit command: the build id
// of each derivation, in the order they were submitted.
func DecodeSubmitResponse(b []byte) ([]BuildID, error) {
	d := newDecoder(b, 0)
	ids := d.ids()
	if err := d.end(); err != nil {
		return nil, err
	}
	return ids, nil
}
