package sexp

import "fmt"

// escapes maps the letter after a backslash in a quoted string to its byte,
// as libgcrypt reads and writes them.
var escapes = map[byte]byte{
	'b': '\b', 't': '\t', 'v': '\v', 'n': '\n', 'f': '\f', 'r': '\r',
	'"': '"', '\'': '\'', '\\': '\\',
}

// quoted reads a "quoted string" with libgcrypt's escapes: \b \t \v \n \f \r
// \" \' \\, \ooo (three octal digits), \xHH, and a backslash before a line
// break (CR, LF, CRLF or LFCR) that continues the string on the next line.
func (p *parser) quoted() (Atom, error) {
	start := p.pos
	p.pos++
	out := Atom{}
	for p.pos < len(p.in) {
		c := p.in[p.pos]
		p.pos++
		switch c {
		case '"':
			return out, nil
		case '\\':
			b, ok, err := p.escape()
			if err != nil {
				return nil, err
			}
			if ok {
				out = append(out, b)
			}
		default:
			out = append(out, c)
		}
	}
	return nil, syntaxErr(start, "unterminated quoted string: expected '\"'")
}

// escape decodes the escape after a backslash; ok is false for a line
// continuation, which adds no byte.
func (p *parser) escape() (b byte, ok bool, err error) {
	if p.pos >= len(p.in) {
		return 0, false, syntaxErr(p.pos, "unterminated escape in quoted string")
	}
	at := p.pos
	c := p.in[p.pos]
	p.pos++
	if v, found := escapes[c]; found {
		return v, true, nil
	}
	switch {
	case c >= '0' && c <= '7':
		return p.octal(at)
	case c == 'x':
		if p.pos+2 > len(p.in) {
			return 0, false, syntaxErr(at, "\\x needs two hex digits")
		}
		hi, ok1 := hexValue(p.in[p.pos])
		lo, ok2 := hexValue(p.in[p.pos+1])
		if !ok1 || !ok2 {
			return 0, false, syntaxErr(at, "\\x needs two hex digits")
		}
		p.pos += 2
		return hi<<4 | lo, true, nil
	case c == '\r' || c == '\n':
		other := byte('\n' + '\r' - c)
		if p.pos < len(p.in) && p.in[p.pos] == other {
			p.pos++
		}
		return 0, false, nil
	}
	return 0, false, syntaxErr(at, fmt.Sprintf("bad escape %q in quoted string", c))
}

// octal decodes the three octal digits starting at at.
func (p *parser) octal(at int) (byte, bool, error) {
	if at+3 > len(p.in) {
		return 0, false, syntaxErr(at, "octal escape needs three digits")
	}
	v := 0
	for _, d := range p.in[at : at+3] {
		if d < '0' || d > '7' {
			return 0, false, syntaxErr(at, "octal escape needs three digits")
		}
		v = v*8 + int(d-'0')
	}
	if v > 0xff {
		return 0, false, syntaxErr(at, "octal escape above \\377")
	}
	p.pos = at + 3
	return byte(v), true, nil
}

// appendQuoted writes a as a quoted string the way libgcrypt does: the named
// escapes for the bytes that have one, \xHH for other control bytes and for
// 0x7f-0xa0, every other byte as it is.
func appendQuoted(dst []byte, a Atom) []byte {
	dst = append(dst, '"')
	for _, c := range a {
		if e, ok := quoteLetter(c); ok {
			dst = append(dst, '\\', e)
			continue
		}
		if c < 0x20 || c >= 0x7f && c <= 0xa0 {
			dst = fmt.Appendf(dst, "\\x%02x", c)
			continue
		}
		dst = append(dst, c)
	}
	return append(dst, '"')
}

// quoteLetter returns the escape letter for c, if it has one: the inverse
// of escapes, as a switch because the printer asks for every byte it writes.
func quoteLetter(c byte) (byte, bool) {
	switch c {
	case '\b':
		return 'b', true
	case '\t':
		return 't', true
	case '\v':
		return 'v', true
	case '\n':
		return 'n', true
	case '\f':
		return 'f', true
	case '\r':
		return 'r', true
	case '"', '\'', '\\':
		return c, true
	}
	return 0, false
}
