package sexp

import (
	"bytes"
	"encoding/base64"
	"fmt"
)

// tokenPunct are the non-alphanumeric bytes allowed in a token; a token may
// start with any of them or a letter, but not with a digit (a digit starts a
// length prefix such as `3:abc`).
const tokenPunct = "-./_:*+="

// spaceBytes separate elements in the advanced form.
const spaceBytes = " \t\n\v\f\r"

// Parse reads one s-expression, which must be a list, in any of libgcrypt's
// forms: canonical (`(3:abc)`), advanced (tokens, "strings", #hex#, |base64|,
// length-prefixed atoms, whitespace) or transport (`{base64 of canonical}`).
// Only whitespace may follow the closing parenthesis. Display hints
// (`[type]data`) are rejected: Guix never writes them.
func Parse(b []byte) (List, error) {
	if len(b) > MaxSize {
		return nil, &SyntaxError{Offset: MaxSize, Msg: fmt.Sprintf("input longer than %d bytes", MaxSize), Err: ErrTooLarge}
	}
	start := skipSpace(b, 0)
	if start < len(b) && b[start] == '{' {
		return parseTransport(b, start)
	}
	p := &parser{in: b, pos: start}
	return p.top()
}

// parseTransport decodes `{base64}` and parses the canonical form inside it.
// Offsets in errors from the payload are those of the decoded bytes.
func parseTransport(b []byte, start int) (List, error) {
	end := bytes.IndexByte(b[start:], '}')
	if end < 0 {
		return nil, syntaxErr(len(b), "unterminated transport form: expected '}'")
	}
	end += start
	if rest := skipSpace(b, end+1); rest != len(b) {
		return nil, syntaxErr(rest, "unexpected data after '}'")
	}
	payload := removeSpace(b[start+1 : end])
	raw, err := base64.StdEncoding.DecodeString(string(payload))
	if err != nil {
		return nil, syntaxErr(start+1, fmt.Sprintf("bad base64 in transport form: %v", err))
	}
	l, err := (&parser{in: raw}).top()
	if err != nil {
		return nil, fmt.Errorf("in transport payload: %w", err)
	}
	return l, nil
}

// parser holds the state of one Parse call.
type parser struct {
	in  []byte
	pos int
}

// top parses the outermost list with an explicit stack, so deep input cannot
// exhaust the goroutine stack, and checks that only whitespace follows it.
func (p *parser) top() (List, error) {
	if p.pos >= len(p.in) {
		return nil, syntaxErr(p.pos, "empty input: expected '('")
	}
	if p.in[p.pos] != '(' {
		return nil, syntaxErr(p.pos, fmt.Sprintf("expected '(', found %q", p.in[p.pos]))
	}
	p.pos++
	stack := []List{{}}
	for p.pos < len(p.in) {
		c := p.in[p.pos]
		switch {
		case bytes.IndexByte([]byte(spaceBytes), c) >= 0:
			p.pos++
		case c == '(':
			if len(stack) >= MaxDepth {
				return nil, &SyntaxError{Offset: p.pos, Msg: fmt.Sprintf("lists nested deeper than %d", MaxDepth), Err: ErrTooDeep}
			}
			stack = append(stack, List{})
			p.pos++
		case c == ')':
			p.pos++
			done := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return done, p.end()
			}
			stack[len(stack)-1] = append(stack[len(stack)-1], done)
		default:
			a, err := p.atom()
			if err != nil {
				return nil, err
			}
			stack[len(stack)-1] = append(stack[len(stack)-1], a)
		}
	}
	return nil, syntaxErr(p.pos, "unexpected end of input: expected ')'")
}

// end checks that only whitespace follows the outermost list.
func (p *parser) end() error {
	if rest := skipSpace(p.in, p.pos); rest != len(p.in) {
		return syntaxErr(rest, "unexpected data after the closing ')'")
	}
	return nil
}

// atom parses one atom starting at p.pos in any of its written forms.
func (p *parser) atom() (Atom, error) {
	c := p.in[p.pos]
	switch {
	case c == '"':
		return p.quoted()
	case c == '#':
		return p.hex()
	case c == '|':
		return p.base64()
	case c >= '0' && c <= '9':
		return p.prefixed()
	case isTokenStart(c):
		return p.token(), nil
	case c == '[':
		return nil, syntaxErr(p.pos, "display hints ('[...]') are not supported")
	}
	return nil, syntaxErr(p.pos, fmt.Sprintf("unexpected character %q", c))
}

// token reads a bare token such as `public-key` or `Ed25519`.
func (p *parser) token() Atom {
	start := p.pos
	for p.pos < len(p.in) && isTokenByte(p.in[p.pos]) {
		p.pos++
	}
	return Atom(bytes.Clone(p.in[start:p.pos]))
}

// prefixed reads a length-prefixed atom: `3:abc`, `3"abc"`, `3#616263#` or
// `3|YWJj|`. As in libgcrypt, the length has no leading zero; unlike
// libgcrypt, `0:` is read as the empty atom, which is how Canonical writes it.
func (p *parser) prefixed() (Atom, error) {
	start := p.pos
	n := 0
	for p.pos < len(p.in) && p.in[p.pos] >= '0' && p.in[p.pos] <= '9' {
		n = n*10 + int(p.in[p.pos]-'0')
		if n > len(p.in) {
			return nil, syntaxErr(start, "length prefix longer than the input")
		}
		p.pos++
	}
	if p.in[start] == '0' && p.pos-start > 1 {
		return nil, syntaxErr(start, "length prefix has a leading zero")
	}
	if p.pos >= len(p.in) {
		return nil, syntaxErr(p.pos, "unexpected end of input after a length prefix")
	}
	if p.in[p.pos] == ':' {
		p.pos++
		if len(p.in)-p.pos < n {
			return nil, syntaxErr(start, fmt.Sprintf("length prefix %d runs past the end of the input", n))
		}
		a := Atom(bytes.Clone(p.in[p.pos : p.pos+n]))
		p.pos += n
		return a, nil
	}
	var a Atom
	var err error
	switch p.in[p.pos] {
	case '"':
		a, err = p.quoted()
	case '#':
		a, err = p.hex()
	case '|':
		a, err = p.base64()
	default:
		return nil, syntaxErr(p.pos, "a number must be a length prefix followed by ':', '\"', '#' or '|' (bare numbers are not atoms)")
	}
	if err == nil && len(a) != n {
		err = syntaxErr(start, fmt.Sprintf("length prefix %d does not match the %d bytes that follow", n, len(a)))
	}
	return a, err
}

// hex reads `#...#`: an even number of hex digits, whitespace allowed.
func (p *parser) hex() (Atom, error) {
	start := p.pos
	p.pos++
	var out []byte
	var hi byte
	half := false
	for ; p.pos < len(p.in); p.pos++ {
		c := p.in[p.pos]
		if c == '#' {
			if half {
				return nil, syntaxErr(p.pos, "odd number of hex digits")
			}
			p.pos++
			return Atom(out), nil
		}
		if bytes.IndexByte([]byte(spaceBytes), c) >= 0 {
			continue
		}
		v, ok := hexValue(c)
		if !ok {
			return nil, syntaxErr(p.pos, fmt.Sprintf("bad hex digit %q", c))
		}
		if half {
			out = append(out, hi<<4|v)
		}
		hi, half = v, !half
	}
	return nil, syntaxErr(start, "unterminated hex string: expected '#'")
}

// base64 reads `|...|`; padding is optional, whitespace is not allowed.
func (p *parser) base64() (Atom, error) {
	start := p.pos
	end := bytes.IndexByte(p.in[start+1:], '|')
	if end < 0 {
		return nil, syntaxErr(start, "unterminated base64 string: expected '|'")
	}
	body := bytes.TrimRight(p.in[start+1:start+1+end], "=")
	out, err := base64.RawStdEncoding.DecodeString(string(body))
	if err != nil {
		return nil, syntaxErr(start+1, fmt.Sprintf("bad base64: %v", err))
	}
	p.pos = start + end + 2
	return Atom(out), nil
}

func isTokenStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || bytes.IndexByte([]byte(tokenPunct), c) >= 0
}

func isTokenByte(c byte) bool {
	return isTokenStart(c) || c >= '0' && c <= '9'
}

func hexValue(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && bytes.IndexByte([]byte(spaceBytes), b[i]) >= 0 {
		i++
	}
	return i
}

func removeSpace(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if bytes.IndexByte([]byte(spaceBytes), c) < 0 {
			out = append(out, c)
		}
	}
	return out
}

func syntaxErr(off int, msg string) error {
	return &SyntaxError{Offset: off, Msg: msg, Err: ErrSyntax}
}
