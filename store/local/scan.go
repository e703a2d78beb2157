package local

import (
	"slices"

	"github.com/tbfg/tbfg-node/store"
)

// base32Chars marks the bytes that can appear in a store path's hash part
// (nix-base32: digits and lowercase letters but e, o, u, t).
var base32Chars = func() (t [256]bool) {
	for _, c := range []byte("0123456789abcdfghijklmnpqrsvwxyz") {
		t[c] = true
	}
	return t
}()

// Scanner is an io.Writer that looks for the hash parts of candidate store
// paths in everything written to it, as Nix's reference scanner does: write an
// item's NAR to it (or its files' contents) and ask Found which candidates
// occur. A hash part split across two writes is found. The zero value finds
// nothing; use NewScanner.
type Scanner struct {
	want  map[[store.HashLen]byte]store.Path
	found map[store.Path]bool
	tail  []byte // the last bytes written, up to HashLen-1 of them
	buf   []byte // scratch for tail + the head of the next write
}

// NewScanner returns a Scanner for the given candidates. Candidates whose hash
// part is malformed are ignored.
func NewScanner(candidates []store.Path) *Scanner {
	s := &Scanner{
		want:  make(map[[store.HashLen]byte]store.Path, len(candidates)),
		found: make(map[store.Path]bool),
	}
	for _, p := range candidates {
		h := p.HashPart()
		if len(h) != store.HashLen {
			continue
		}
		s.want[[store.HashLen]byte([]byte(h))] = p
	}
	return s
}

// Write scans p. It never fails.
func (s *Scanner) Write(p []byte) (int, error) {
	if len(s.want) == 0 {
		return len(p), nil
	}
	// A hash part straddling the previous write and this one starts in the
	// tail and ends in the first HashLen-1 bytes of p.
	if len(s.tail) > 0 {
		s.buf = append(append(s.buf[:0], s.tail...), p[:min(len(p), store.HashLen-1)]...)
		s.search(s.buf)
	}
	s.search(p)
	s.keepTail(p)
	return len(p), nil
}

// keepTail remembers the last HashLen-1 bytes seen, across short writes.
func (s *Scanner) keepTail(p []byte) {
	const keep = store.HashLen - 1
	if len(p) >= keep {
		s.tail = append(s.tail[:0], p[len(p)-keep:]...)
		return
	}
	s.tail = append(s.tail, p...)
	if len(s.tail) > keep {
		s.tail = append(s.tail[:0], s.tail[len(s.tail)-keep:]...)
	}
}

// search looks for candidate hash parts in b. It checks each window from its
// end, so a byte outside the alphabet skips every window that contains it:
// the same loop as Nix's, and the reason typical binaries scan fast.
func (s *Scanner) search(b []byte) {
	for i := 0; i+store.HashLen <= len(b); {
		j := store.HashLen - 1
		for j >= 0 && base32Chars[b[i+j]] {
			j--
		}
		if j >= 0 {
			i += j + 1
			continue
		}
		if p, ok := s.want[[store.HashLen]byte(b[i:i+store.HashLen])]; ok {
			s.found[p] = true
		}
		i++
	}
}

// Found returns the candidates seen so far, sorted.
func (s *Scanner) Found() []store.Path {
	out := make([]store.Path, 0, len(s.found))
	for p := range s.found {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}
