package sexp

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os/exec"
	"strconv"
	"testing"

	"github.com/tbfg/tbfg-node/internal/guiletest"
)

// TestAdvancedMatchesLibgcrypt prints random s-expressions with libgcrypt's
// gcry_sexp_sprint and with Advanced, compares the bytes, and reads
// libgcrypt's text back with Parse.
func TestAdvancedMatchesLibgcrypt(t *testing.T) {
	guile := guiletest.Require(t)
	rng := rand.New(rand.NewPCG(1, 2))
	var samples []List
	for range 400 {
		samples = append(samples, randomList(rng, 0))
	}
	var in bytes.Buffer
	for _, s := range samples {
		in.Write(hexForm(nil, s))
		in.WriteByte('\n')
	}
	cmd := exec.Command(guile, "--no-auto-compile", "testdata/sprint.scm")
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("guile: %v\n%s", err, stderr.Bytes())
	}
	r := bufio.NewReader(bytes.NewReader(out))
	for i, s := range samples {
		want, err := readLengthPrefixed(r)
		if err != nil {
			t.Fatalf("sample %d: reading libgcrypt's output: %v", i, err)
		}
		if got := Advanced(s); !bytes.Equal(got, want) {
			t.Fatalf("sample %d %q:\n got %q\nwant %q", i, Canonical(s), got, want)
		}
		if hasRawNUL(s) {
			continue
		}
		if back, err := Parse(want); err != nil || !Equal(back, s) {
			t.Fatalf("sample %d: libgcrypt's text %q does not read back (%v)", i, want, err)
		}
	}
}

func readLengthPrefixed(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(line[:len(line)-1])
	if err != nil {
		return nil, err
	}
	buf := make([]byte, n)
	_, err = io.ReadFull(r, buf)
	return buf, err
}

// hexForm writes s with every atom as #HEX# (or "" when empty): plain ASCII
// that libgcrypt reads exactly.
func hexForm(dst []byte, s Sexp) []byte {
	switch x := s.(type) {
	case Atom:
		if len(x) == 0 {
			return append(dst, `"" `...)
		}
		return fmt.Appendf(dst, "#%X# ", []byte(x))
	case List:
		dst = append(dst, '(')
		for _, e := range x {
			dst = hexForm(dst, e)
		}
		return append(dst, ") "...)
	}
	return dst
}

// atomAlphabets are byte classes that drive libgcrypt's choice of written form.
var atomAlphabets = []string{
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-./_:*+=",
	"0123456789abc",
	"abc \"'\\\b\t\v\n\f\r",
	"ab\x00\x01\x1f\x7f\x80\xa0\xa1\xff",
	"xyz#|()[]{}~ ",
}

func randomAtom(rng *rand.Rand) Atom {
	if rng.IntN(20) == 0 {
		return Atom{}
	}
	alpha := atomAlphabets[rng.IntN(len(atomAlphabets))]
	a := make(Atom, 1+rng.IntN(6))
	for i := range a {
		a[i] = alpha[rng.IntN(len(alpha))]
	}
	if rng.IntN(10) == 0 {
		a = make(Atom, 32)
		for i := range a {
			a[i] = byte(rng.IntN(256))
		}
	}
	return a
}

func randomList(rng *rand.Rand, depth int) List {
	l := List{}
	for range rng.IntN(5) {
		if depth < 4 && rng.IntN(3) == 0 {
			l = append(l, randomList(rng, depth+1))
		} else {
			l = append(l, randomAtom(rng))
		}
	}
	return l
}
