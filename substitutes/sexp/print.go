package sexp

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strconv"
)

// Canonical returns the canonical form of s: `(3:abc2:de)`, no whitespace,
// every atom length-prefixed.
func Canonical(s Sexp) []byte {
	return appendCanonical(nil, s)
}

func appendCanonical(dst []byte, s Sexp) []byte {
	switch x := s.(type) {
	case Atom:
		dst = strconv.AppendInt(dst, int64(len(x)), 10)
		dst = append(dst, ':')
		return append(dst, x...)
	case List:
		dst = append(dst, '(')
		for _, e := range x {
			dst = appendCanonical(dst, e)
		}
		return append(dst, ')')
	}
	return dst
}

// Transport returns the transport form of s: `{base64 of the canonical form}`.
func Transport(s Sexp) []byte {
	c := Canonical(s)
	out := make([]byte, 0, base64.StdEncoding.EncodedLen(len(c))+2)
	out = append(out, '{')
	out = base64.StdEncoding.AppendEncode(out, c)
	return append(out, '}')
}

// Advanced returns the advanced (text) form of s byte for byte as libgcrypt's
// gcry_sexp_sprint(GCRYSEXP_FMT_ADVANCED) prints it, which is what Guix writes
// into key files, ACLs and signatures:
//
//   - a list that is not the outermost one starts on a new line, indented by
//     one space per level;
//   - an atom is followed by a space unless a ')' comes next;
//   - a ')' followed by an atom or by another ')' is followed by a new line
//     and the indentation of the enclosing level;
//   - the output ends with a new line.
//
// Atoms are written as tokens, "quoted strings" or #HEX# by libgcrypt's rules.
// libgcrypt treats a NUL byte like a token byte, so an atom such as "A\x00"
// is written raw; Advanced does the same, and Parse rejects the result, as
// libgcrypt's own reader does.
func Advanced(s Sexp) []byte {
	events := flatten(nil, s)
	var out []byte
	indent := 0
	for i, ev := range events {
		next := evStop
		if i+1 < len(events) {
			next = events[i+1].kind
		}
		switch ev.kind {
		case evOpen:
			if indent > 0 {
				out = append(out, '\n')
				out = append(out, bytes.Repeat([]byte{' '}, indent)...)
			}
			out = append(out, '(')
			indent++
		case evClose:
			out = append(out, ')')
			indent--
			if next != evOpen && next != evStop {
				out = append(out, '\n')
				out = append(out, bytes.Repeat([]byte{' '}, indent)...)
			}
		case evAtom:
			out = appendAtom(out, ev.atom)
			if next != evClose {
				out = append(out, ' ')
			}
		}
	}
	return append(out, '\n')
}

// String returns the advanced form of s; it is meant for messages and tests.
func String(s Sexp) string { return string(Advanced(s)) }

type eventKind int

const (
	evStop eventKind = iota
	evOpen
	evClose
	evAtom
)

// event is one element of libgcrypt's internal flat encoding of an
// s-expression; the printer's layout decisions look one event ahead.
type event struct {
	kind eventKind
	atom Atom
}

func flatten(dst []event, s Sexp) []event {
	switch x := s.(type) {
	case Atom:
		return append(dst, event{kind: evAtom, atom: x})
	case List:
		dst = append(dst, event{kind: evOpen})
		for _, e := range x {
			dst = flatten(dst, e)
		}
		return append(dst, event{kind: evClose})
	}
	return dst
}

// atomForm is how libgcrypt chooses to write an atom.
type atomForm int

const (
	formHex atomForm = iota
	formQuoted
	formToken
)

// suitableForm mirrors libgcrypt's choice: binary-looking data (first byte 0
// or >= 0x80, or a control byte without a named escape, or 0x7f-0xa0) as hex;
// otherwise a token when every byte is a token byte and the first is not a
// digit; otherwise a quoted string. libgcrypt's byte-class test also matches
// NUL, which this keeps.
func suitableForm(a Atom) atomForm {
	if len(a) == 0 {
		return formQuoted
	}
	if a[0] == 0 || a[0]&0x80 != 0 {
		return formHex
	}
	maybeToken := true
	for _, c := range a {
		_, named := quoteLetter(c)
		if (c < 0x20 || c >= 0x7f && c <= 0xa0) && !named && c != 0 {
			return formHex
		}
		if maybeToken && !isTokenByte(c) && c != 0 {
			maybeToken = false
		}
	}
	if maybeToken && !(a[0] >= '0' && a[0] <= '9') {
		return formToken
	}
	return formQuoted
}

func appendAtom(dst []byte, a Atom) []byte {
	switch suitableForm(a) {
	case formToken:
		return append(dst, a...)
	case formQuoted:
		return appendQuoted(dst, a)
	}
	return fmt.Appendf(dst, "#%X#", []byte(a))
}
