package scheduler

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
)

// encoder appends the compact binary form used by commands and snapshots:
// unsigned and zig-zag varints, and length-prefixed strings. It is hand-written
// because Submit commands carry thousands of derivations: on those it is about
// 3 times faster than encoding/gob and 6 to 10 times faster than encoding/json
// (BenchmarkEncodeSubmit).
type encoder struct {
	buf []byte
}

func (e *encoder) byte(b byte)      { e.buf = append(e.buf, b) }
func (e *encoder) uvarint(v uint64) { e.buf = binary.AppendUvarint(e.buf, v) }
func (e *encoder) varint(v int64)   { e.buf = binary.AppendVarint(e.buf, v) }
func (e *encoder) str(s string)     { e.uvarint(uint64(len(s))); e.buf = append(e.buf, s...) }
func (e *encoder) count(n int)      { e.uvarint(uint64(n)) }

func (e *encoder) boolean(b bool) {
	if b {
		e.byte(1)
	} else {
		e.byte(0)
	}
}

func (e *encoder) strs(ss []string) {
	e.count(len(ss))
	for _, s := range ss {
		e.str(s)
	}
}

// decoder reads what encoder wrote. The first error sticks: later reads return
// zero values, so callers check err once at the end. Untrusted input can never
// make it panic or allocate more than the input's size justifies.
type decoder struct {
	buf   []byte
	str0  string // buf as one string: decoded strings are substrings of it
	clone bool   // copy each string instead (for data kept for long)
	off   int
	err   error
}

// newDecoder returns a decoder over b starting at off. Strings it returns
// share one copy of b, which costs one allocation instead of one per string;
// code that keeps a decoded string for long copies it (strings.Clone).
func newDecoder(b []byte, off int) *decoder {
	return &decoder{buf: b, str0: string(b), off: off}
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: byte %d: %s", ErrMalformed, d.off, what)
	}
}

func (d *decoder) byte() byte {
	if d.err != nil || d.off >= len(d.buf) {
		d.fail("unexpected end reading a byte")
		return 0
	}
	d.off++
	return d.buf[d.off-1]
}

// uvarint reads an unsigned varint in its shortest form, the one encoder
// writes: binary.Uvarint also takes longer ones (0x86 0x00 for 6), which
// would give one command several encodings.
func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf[d.off:])
	if n <= 0 {
		d.fail("bad unsigned varint")
		return 0
	}
	if !d.shortest(n) {
		return 0
	}
	d.off += n
	return v
}

// varint reads a zig-zag varint in its shortest form, as uvarint does.
func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.buf[d.off:])
	if n <= 0 {
		d.fail("bad signed varint")
		return 0
	}
	if !d.shortest(n) {
		return 0
	}
	d.off += n
	return v
}

// shortest checks that the n-byte varint at the offset has no useless last
// byte: in the shortest form only the varint 0 ends with a zero byte.
func (d *decoder) shortest(n int) bool {
	if n > 1 && d.buf[d.off+n-1] == 0 {
		d.fail("varint not in its shortest form")
		return false
	}
	return true
}

// count reads a length and checks that at least min bytes per element remain,
// so a forged length cannot trigger a huge allocation.
func (d *decoder) count(min int) int {
	n := d.uvarint()
	if d.err != nil {
		return 0
	}
	if n > uint64(len(d.buf)-d.off)/uint64(max(min, 1)) {
		d.fail(fmt.Sprintf("length %d exceeds the remaining input", n))
		return 0
	}
	return int(n)
}

func (d *decoder) str() string {
	n := d.count(1)
	if d.err != nil {
		return ""
	}
	s := d.str0[d.off : d.off+n]
	d.off += n
	if d.clone {
		return strings.Clone(s)
	}
	return s
}

func (d *decoder) boolean() bool {
	switch d.byte() {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail("bad boolean")
	return false
}

func (d *decoder) strs() []string {
	n := d.count(1)
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = d.str()
	}
	return out
}

// int32 reads a zig-zag varint that must fit an int32.
func (d *decoder) int32() int32 {
	v := d.varint()
	if v < math.MinInt32 || v > math.MaxInt32 {
		d.fail("integer out of range")
		return 0
	}
	return int32(v)
}

// more reports whether input remains, for an optional last field.
func (d *decoder) more() bool { return d.err == nil && d.off < len(d.buf) }

// end fails unless the whole input was consumed.
func (d *decoder) end() error {
	if d.err == nil && d.off != len(d.buf) {
		d.fail(fmt.Sprintf("%d trailing bytes", len(d.buf)-d.off))
	}
	return d.err
}
