package publish

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/tbfg/tbfg-node/store/nixbase32"
)

// TestVerifier checks that a wrong stream never comes out whole: the reader
// fails before its last byte, whatever is wrong with it.
func TestVerifier(t *testing.T) {
	good := bytes.Repeat([]byte("nix-archive-1 "), 1000)
	sum := sha256.Sum256(good)
	narHash := "sha256:" + nixbase32.Encode(sum[:])
	flip := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 1
		return b
	}
	tests := []struct {
		name    string
		r       io.Reader
		wantErr error
	}{
		{"exact", bytes.NewReader(good), nil},
		{"one byte at a time", iotest.OneByteReader(bytes.NewReader(good)), nil},
		{"data with EOF", iotest.DataErrReader(bytes.NewReader(good)), nil},
		{"first byte flipped", bytes.NewReader(flip(0)), ErrNARMismatch},
		{"last byte flipped", bytes.NewReader(flip(len(good) - 1)), ErrNARMismatch},
		{"short", bytes.NewReader(good[:len(good)-1]), ErrNARMismatch},
		{"empty", bytes.NewReader(nil), ErrNARMismatch},
		{"long", bytes.NewReader(append(bytes.Clone(good), 0)), ErrNARMismatch},
		{"read error", io.MultiReader(bytes.NewReader(good[:100]), iotest.ErrReader(errors.New("peer gone"))), nil},
		{"timeout", iotest.TimeoutReader(bytes.NewReader(good)), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := newVerifier(tt.r, narHash, uint64(len(good)))
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(v)
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v, want %v", err, tt.wantErr)
			}
			if err == nil && !bytes.Equal(got, good) {
				t.Errorf("no error, but %d bytes that differ from the NAR", len(got))
			}
			if err != nil && len(got) >= len(good) {
				t.Errorf("error %v after delivering %d bytes, the whole size", err, len(got))
			}
			if tt.name != "exact" && tt.name != "one byte at a time" && tt.name != "data with EOF" && err == nil {
				t.Errorf("wrong stream accepted")
			}
		})
	}
}

func TestNewVerifierRejectsBadNarinfo(t *testing.T) {
	for _, tt := range []struct {
		hash string
		size uint64
	}{
		{"md5:00", 1},
		{"sha256:xyz", 1},
		{"sha256:" + nixbase32.Encode(make([]byte, 20)), 1},
		{"sha256:" + nixbase32.Encode(make([]byte, 32)), 0},
	} {
		if _, err := newVerifier(bytes.NewReader(nil), tt.hash, tt.size); err == nil {
			t.Errorf("newVerifier(%q, %d) accepted", tt.hash, tt.size)
		}
	}
}
