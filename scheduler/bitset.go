package scheduler

import "math/bits"

// bitset is a set of build indices, one bit each. Status reads walk it a word
// (64 builds) at a time, so finding the newest 100 builds of a state among
// 100,000 touches at most 1,563 words instead of 100,000 records.
type bitset []uint64

// set adds i, growing the set as needed.
func (b *bitset) set(i uint32) {
	w := int(i >> 6)
	if w >= len(*b) {
		*b = append(*b, make([]uint64, w+1-len(*b))...)
	}
	(*b)[w] |= 1 << (i & 63)
}

// unset removes i.
func (b bitset) unset(i uint32) {
	if w := int(i >> 6); w < len(b) {
		b[w] &^= 1 << (i & 63)
	}
}

// has reports whether i is in the set.
func (b bitset) has(i uint32) bool {
	w := int(i >> 6)
	return w < len(b) && b[w]&(1<<(i&63)) != 0
}

// word returns word w, zero past the end.
func (b bitset) word(w int) uint64 {
	if w < len(b) {
		return b[w]
	}
	return 0
}

// count returns the number of indices in the set.
func (b bitset) count() int {
	n := 0
	for _, w := range b {
		n += bits.OnesCount64(w)
	}
	return n
}
