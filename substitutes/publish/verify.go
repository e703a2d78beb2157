package publish

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"

	"github.com/tbfg/tbfg-node/store/nixbase32"
)

// maxEmptyReads bounds the (0, nil) reads tolerated from a source.
const maxEmptyReads = 100

// verifier passes a NAR through while checking it against the expected size
// and SHA-256. It delivers at most size-1 bytes before it has seen the end of
// the stream, then delivers the last byte only if the size and hash match; so
// a reader that stops at the first error never holds a complete wrong NAR.
type verifier struct {
	r    io.Reader
	want []byte
	size int64
	n    int64 // bytes read from r and hashed
	h    hash.Hash
	err  error // sticky: io.EOF once done, or the verification error
}

// newVerifier checks r against narHash ("sha256:<nix-base32>") and size.
func newVerifier(r io.Reader, narHash string, size uint64) (*verifier, error) {
	digest, ok := strings.CutPrefix(narHash, "sha256:")
	if !ok {
		return nil, fmt.Errorf("NarHash %q: not sha256", narHash)
	}
	want, err := nixbase32.Decode(digest)
	if err != nil || len(want) != sha256.Size {
		return nil, fmt.Errorf("NarHash %q: not a SHA-256 digest", narHash)
	}
	if size == 0 || size > 1<<62 {
		return nil, fmt.Errorf("NarSize %d out of range", size)
	}
	return &verifier{r: r, want: want, size: int64(size), h: sha256.New()}, nil
}

// Read implements io.Reader.
func (v *verifier) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if free := v.size - 1 - v.n; free > 0 {
		return v.readFree(p[:min(int64(len(p)), free)])
	}
	last, err := v.finish()
	if err != nil {
		v.err = err
		return 0, err
	}
	p[0] = last
	v.err = io.EOF
	return 1, nil
}

// readFree reads bytes that may be delivered before the end is checked.
func (v *verifier) readFree(p []byte) (int, error) {
	k, err := v.r.Read(p)
	v.h.Write(p[:k])
	v.n += int64(k)
	if errors.Is(err, io.EOF) {
		v.err = v.short()
		return k, nil // the error comes with the next call
	}
	if err != nil {
		v.err = fmt.Errorf("read NAR: %w", err)
		return k, nil
	}
	return k, nil
}

// finish reads the last byte and the end of the stream, and checks the
// whole.
func (v *verifier) finish() (byte, error) {
	var buf [1]byte
	if _, err := io.ReadFull(v.r, buf[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, v.short()
		}
		return 0, fmt.Errorf("read NAR: %w", err)
	}
	v.h.Write(buf[:])
	v.n++
	if err := v.expectEOF(); err != nil {
		return 0, err
	}
	if got := v.h.Sum(nil); !bytes.Equal(got, v.want) {
		return 0, fmt.Errorf("%w: sha256 %s, narinfo says %s", ErrNARMismatch,
			nixbase32.Encode(got), nixbase32.Encode(v.want))
	}
	return buf[0], nil
}

// expectEOF checks that r has nothing after the expected size.
func (v *verifier) expectEOF() error {
	var extra [1]byte
	for range maxEmptyReads {
		k, err := v.r.Read(extra[:])
		if k > 0 {
			return fmt.Errorf("%w: longer than NarSize %d", ErrNARMismatch, v.size)
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read NAR: %w", err)
		}
	}
	return fmt.Errorf("read NAR: %w", io.ErrNoProgress)
}

func (v *verifier) short() error {
	return fmt.Errorf("%w: %d bytes, NarSize is %d", ErrNARMismatch, v.n, v.size)
}
