package sexp

import (
	"bytes"
	"errors"
	"fmt"
)

// Limits on untrusted input. Real keys, ACLs and signatures are a few hundred
// bytes and at most five levels deep; an ACL with thousands of keys still fits.
const (
	// MaxDepth is the deepest list nesting Parse accepts.
	MaxDepth = 64
	// MaxSize is the longest input, in bytes, Parse accepts.
	MaxSize = 1 << 20
)

// Errors returned (wrapped in a *SyntaxError) by Parse.
var (
	// ErrSyntax means the input is not a well-formed s-expression.
	ErrSyntax = errors.New("malformed s-expression")
	// ErrTooDeep means the input nests lists deeper than MaxDepth.
	ErrTooDeep = errors.New("s-expression nested too deeply")
	// ErrTooLarge means the input is longer than MaxSize.
	ErrTooLarge = errors.New("s-expression too large")
)

// SyntaxError reports where and why an input could not be parsed.
type SyntaxError struct {
	// Offset is the byte offset in the input where the problem was found.
	Offset int
	// Msg says what was wrong, e.g. `expected ')'`.
	Msg string
	// Err is one of ErrSyntax, ErrTooDeep or ErrTooLarge.
	Err error
}

// Error implements error.
func (e *SyntaxError) Error() string {
	return fmt.Sprintf("s-expression offset %d: %s", e.Offset, e.Msg)
}

// Unwrap returns the sentinel error classifying e.
func (e *SyntaxError) Unwrap() error { return e.Err }

// Sexp is an s-expression: an Atom or a List.
type Sexp interface {
	isSexp()
}

// Atom is an octet string: a token such as `ecc`, a text string, or binary data
// such as a key's q. The written form is chosen when printing, as libgcrypt does.
type Atom []byte

// List is a parenthesised sequence of s-expressions.
type List []Sexp

func (Atom) isSexp() {}
func (List) isSexp() {}

// Head returns the first element of l as a string when it is an atom, and ""
// otherwise. For `(public-key (ecc ...))` it returns "public-key".
func (l List) Head() string {
	if len(l) == 0 {
		return ""
	}
	if a, ok := l[0].(Atom); ok {
		return string(a)
	}
	return ""
}

// AtomAt returns the i-th element of l when it exists and is an atom.
func (l List) AtomAt(i int) (Atom, bool) {
	if i < 0 || i >= len(l) {
		return nil, false
	}
	a, ok := l[i].(Atom)
	return a, ok
}

// Find returns the first list, in depth-first order starting with l itself,
// whose head is token; nil when there is none. It behaves like libgcrypt's
// gcry_sexp_find_token, which Guix uses to pick apart signatures.
func (l List) Find(token string) List {
	if l.Head() == token {
		return l
	}
	for _, e := range l {
		if sub, ok := e.(List); ok {
			if found := sub.Find(token); found != nil {
				return found
			}
		}
	}
	return nil
}

// Equal reports whether a and b have the same structure and atoms, which is how
// Guix compares keys (it converts both to Scheme data first).
func Equal(a, b Sexp) bool {
	switch x := a.(type) {
	case Atom:
		y, ok := b.(Atom)
		return ok && bytes.Equal(x, y)
	case List:
		y, ok := b.(List)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !Equal(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	return false
}
