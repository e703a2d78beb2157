package nar

import (
	"crypto/sha256"
	"fmt"
	"hash"
	"io"

	"github.com/tbfg/tbfg-node/store/nixbase32"
)

// Sum is what a narinfo says about an archive: its SHA-256 and its size.
type Sum struct {
	// SHA256 is the digest of the archive's bytes.
	SHA256 [sha256.Size]byte
	// Size is the archive's length in bytes (NarSize).
	Size int64
}

// NarHash returns the digest in the form narinfos and Nix print:
// "sha256:" followed by its nix-base32 text.
func (s Sum) NarHash() string {
	return "sha256:" + nixbase32.Encode(s.SHA256[:])
}

// Hasher is an io.Writer that computes the Sum of everything written to it.
// Pass it to Dump, or tee a download through it.
type Hasher struct {
	h hash.Hash
	n int64
}

// NewHasher returns a Hasher of an empty archive.
func NewHasher() *Hasher { return &Hasher{h: sha256.New()} }

// Write adds p to the hashed bytes. It never fails.
func (h *Hasher) Write(p []byte) (int, error) {
	h.h.Write(p)
	h.n += int64(len(p))
	return len(p), nil
}

// Sum returns the digest and size of the bytes written so far.
func (h *Hasher) Sum() Sum {
	var s Sum
	h.h.Sum(s.SHA256[:0])
	s.Size = h.n
	return s
}

// HashPath returns the Sum of the NAR of the file system object at path,
// without keeping the archive: what `nix hash path` and NarHash/NarSize give.
// Archiving and hashing run concurrently.
func HashPath(path string) (Sum, error) {
	h := NewHasher()
	pw := newPipelinedWriter(h)
	err := Dump(pw, path)
	if cerr := pw.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Sum{}, err
	}
	return h.Sum(), nil
}

// HashReader returns the Sum of the bytes of r, taken as they are: it does not
// parse them. Use it on an archive that is already trusted to be well formed;
// Verify also checks the format.
func HashReader(r io.Reader) (Sum, error) {
	h := NewHasher()
	if _, err := io.Copy(h, r); err != nil {
		return Sum{}, fmt.Errorf("hash nar: %w", err)
	}
	return h.Sum(), nil
}

// Verify reads a whole archive from r, checking it as a Reader with default
// limits does, and returns its Sum: the check to run on an archive from an
// untrusted source before comparing its NarHash with a narinfo's.
func Verify(r io.Reader) (Sum, error) {
	h := NewHasher()
	nr := NewReader(io.TeeReader(r, h))
	for {
		_, err := nr.Next()
		if err == io.EOF {
			return h.Sum(), nil
		}
		if err != nil {
			return Sum{}, err
		}
	}
}

// pipelinedWriter hands the bytes written to it to another goroutine that
// writes them to w, so that producing (reading files) and consuming (hashing)
// use two cores. It keeps a few buffers in flight.
type pipelinedWriter struct {
	w     io.Writer
	full  chan []byte
	free  chan []byte
	done  chan error
	cur   []byte
	err   error
	close bool
}

func newPipelinedWriter(w io.Writer) *pipelinedWriter {
	const n = 4
	p := &pipelinedWriter{w: w, full: make(chan []byte, n), free: make(chan []byte, n), done: make(chan error, 1)}
	for range n - 1 {
		p.free <- getBuf()
	}
	p.cur = getBuf()
	go p.consume()
	return p
}

func (p *pipelinedWriter) consume() {
	var err error
	for b := range p.full {
		if err == nil {
			_, err = p.w.Write(b)
		}
		p.free <- b[:0]
	}
	p.done <- err
}

// take hands b over to the consumer without copying it and returns an empty
// buffer (which may have a different capacity).
func (p *pipelinedWriter) take(b []byte) []byte {
	if len(p.cur) > 0 { // keep the order of earlier Writes
		p.full <- p.cur
		p.cur = <-p.free
	}
	p.full <- b
	return <-p.free
}

// Write copies b into the current buffer, handing full buffers over.
func (p *pipelinedWriter) Write(b []byte) (int, error) {
	if p.close {
		return 0, io.ErrClosedPipe
	}
	total := len(b)
	for len(b) > 0 {
		n := copy(p.cur[len(p.cur):cap(p.cur)], b)
		p.cur = p.cur[:len(p.cur)+n]
		b = b[n:]
		if len(p.cur) == cap(p.cur) {
			p.full <- p.cur
			p.cur = <-p.free
		}
	}
	return total, nil
}

// Close hands over the last buffer, waits for the consumer and returns its
// first error.
func (p *pipelinedWriter) Close() error {
	if p.close {
		return p.err
	}
	p.close = true
	if len(p.cur) > 0 {
		p.full <- p.cur
	}
	close(p.full)
	p.err = <-p.done
	if len(p.cur) == 0 {
		putBuf(p.cur) // never handed over
	}
	for len(p.free) > 0 { // the consumer has ended: every other buffer is back
		putBuf(<-p.free)
	}
	p.cur = nil
	return p.err
}
