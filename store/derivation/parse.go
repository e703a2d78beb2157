package derivation

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tbfg/tbfg-node/store"
)

// Parse reads a derivation in the ATerm format
//
//	Derive([outputs],[inputDrvs],[inputSrcs],"system","builder",[args],[env])
//
// whose store paths must lie in dir. It accepts exactly the text Guix and Nix
// write, except that lists may come in any order; Bytes writes them back in
// canonical order, so Parse(b).Bytes() == b for every file Guix or Nix made.
// Duplicate keys, escapes other than \" \\ \n \r \t, trailing data and input
// over MaxSize are rejected.
func Parse(data []byte, dir store.Dir) (*Derivation, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxSize)
	}
	if err := dir.Validate(); err != nil {
		return nil, err
	}
	p := &parser{s: string(data), dir: dir}
	d, err := p.derivation()
	if err != nil {
		return nil, err
	}
	return d, nil
}

// parser reads one derivation from s. Every method advances pos past what it
// read or returns a *SyntaxError pointing at the offending byte.
type parser struct {
	s   string
	pos int
	dir store.Dir
}

// derivation reads the whole input. Its structure follows the format: the
// fixed prefix, seven comma-separated fields, the closing parenthesis, the
// end of input.
func (p *parser) derivation() (*Derivation, error) {
	d := &Derivation{}
	var err error
	steps := []func() error{
		func() error { return p.literal("Derive(") },
		func() error { d.Outputs, err = p.outputs(); return err },
		func() error { return p.literal(",") },
		func() error { d.InputDrvs, err = p.inputDrvs(); return err },
		func() error { return p.literal(",") },
		func() error { d.InputSrcs, err = p.inputSrcs(); return err },
		func() error { return p.literal(",") },
		func() error { d.System, err = p.str(); return err },
		func() error { return p.literal(",") },
		func() error { d.Builder, err = p.str(); return err },
		func() error { return p.literal(",") },
		func() error { d.Args, err = p.strings(); return err },
		func() error { return p.literal(",") },
		func() error { d.Env, err = p.env(); return err },
		func() error { return p.literal(")") },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}
	if p.pos != len(p.s) {
		return nil, p.errorf("unexpected data after the derivation")
	}
	return d, nil
}

// list reads "[" item ("," item)* "]" or "[]", calling item for each element.
func (p *parser) list(item func() error) error {
	if err := p.literal("["); err != nil {
		return err
	}
	if p.peek(']') {
		p.pos++
		return nil
	}
	for {
		if err := item(); err != nil {
			return err
		}
		if p.peek(']') {
			p.pos++
			return nil
		}
		if !p.peek(',') {
			return p.expected(p.pos, "',' or ']'")
		}
		p.pos++
	}
}

// tuple reads "(" followed by n comma-separated fields and ")".
func (p *parser) tuple(fields ...func() error) error {
	if err := p.literal("("); err != nil {
		return err
	}
	for i, f := range fields {
		if i > 0 {
			if err := p.literal(","); err != nil {
				return err
			}
		}
		if err := f(); err != nil {
			return err
		}
	}
	return p.literal(")")
}

func (p *parser) outputs() (map[string]Output, error) {
	outs := make(map[string]Output, 1)
	err := p.list(func() error {
		start := p.pos
		var id, path string
		var o Output
		err := p.tuple(
			func() (err error) { id, err = p.str(); return err },
			func() (err error) { path, err = p.str(); return err },
			func() (err error) { o.HashAlgo, err = p.str(); return err },
			func() (err error) { o.Hash, err = p.str(); return err },
		)
		if err != nil {
			return err
		}
		if o.Path, err = p.output(id, path, o); err != nil {
			return p.errorAt(start, "output %q: %v", id, err)
		}
		if _, dup := outs[id]; dup {
			return p.errorAt(start, "duplicate output %q", id)
		}
		outs[id] = o
		return nil
	})
	return outs, err
}

// output checks one output's fields and returns its path.
func (p *parser) output(id, path string, o Output) (store.Path, error) {
	if err := store.ValidateName(id); err != nil {
		return "", fmt.Errorf("bad output id: %w", err)
	}
	if o.IsFixed() {
		if _, _, err := o.FixedHash(); err != nil {
			return "", err
		}
		if path == "" {
			return "", fmt.Errorf("fixed output has no path")
		}
	} else if o.Hash != "" {
		return "", fmt.Errorf("hash %q without a hash algorithm", o.Hash)
	}
	if path == "" {
		return "", nil
	}
	return p.dir.ParsePath(path)
}

func (p *parser) inputDrvs() (map[store.Path][]string, error) {
	drvs := make(map[store.Path][]string)
	err := p.list(func() error {
		start := p.pos
		var path store.Path
		var outs []string
		err := p.tuple(
			func() (err error) { path, err = p.path(); return err },
			func() (err error) { outs, err = p.strings(); return err },
		)
		if err != nil {
			return err
		}
		if _, err := NameFromPath(path); err != nil {
			return p.errorAt(start, "input derivation: %v", err)
		}
		if _, dup := drvs[path]; dup {
			return p.errorAt(start, "duplicate input derivation %s", path)
		}
		if dup := firstDuplicate(outs); dup != "" {
			return p.errorAt(start, "input derivation %s: duplicate output %q", path, dup)
		}
		drvs[path] = outs
		return nil
	})
	return drvs, err
}

func (p *parser) inputSrcs() ([]store.Path, error) {
	var srcs []store.Path
	seen := make(map[store.Path]bool)
	err := p.list(func() error {
		start := p.pos
		path, err := p.path()
		if err != nil {
			return err
		}
		if seen[path] {
			return p.errorAt(start, "duplicate input source %s", path)
		}
		seen[path] = true
		srcs = append(srcs, path)
		return nil
	})
	if srcs == nil {
		srcs = []store.Path{}
	}
	return srcs, err
}

func (p *parser) env() (map[string]string, error) {
	env := make(map[string]string)
	err := p.list(func() error {
		start := p.pos
		var k, v string
		err := p.tuple(
			func() (err error) { k, err = p.str(); return err },
			func() (err error) { v, err = p.str(); return err },
		)
		if err != nil {
			return err
		}
		if _, dup := env[k]; dup {
			return p.errorAt(start, "duplicate environment variable %q", k)
		}
		env[k] = v
		return nil
	})
	return env, err
}

func (p *parser) strings() ([]string, error) {
	list := []string{}
	err := p.list(func() error {
		s, err := p.str()
		list = append(list, s)
		return err
	})
	return list, err
}

// path reads a string holding a store path of p.dir.
func (p *parser) path() (store.Path, error) {
	start := p.pos
	s, err := p.str()
	if err != nil {
		return "", err
	}
	path, err := p.dir.ParsePath(s)
	if err != nil {
		return "", p.errorAt(start, "%v", err)
	}
	return path, nil
}

// str reads a double-quoted string. Strings without escapes are returned as
// slices of the input, which makes parsing large derivations cheap.
func (p *parser) str() (string, error) {
	if err := p.expect('"'); err != nil {
		return "", err
	}
	start := p.pos
	end := strings.IndexByte(p.s[start:], '"')
	if end < 0 {
		return "", p.errorAt(len(p.s), "unterminated string starting at column %d", p.column(start-1))
	}
	if strings.IndexByte(p.s[start:start+end], '\\') < 0 {
		p.pos = start + end + 1
		return p.s[start : start+end], nil
	}
	return p.escaped(start)
}

// escaped reads the rest of a string that contains backslash escapes,
// copying the runs between escapes in one piece.
func (p *parser) escaped(start int) (string, error) {
	var b strings.Builder
	b.Grow(strings.IndexByte(p.s[start:], '"'))
	i := start
	for {
		quote := strings.IndexByte(p.s[i:], '"')
		if quote < 0 {
			return "", p.errorAt(len(p.s), "unterminated string starting at column %d", p.column(start-1))
		}
		esc := strings.IndexByte(p.s[i:i+quote], '\\')
		if esc < 0 {
			b.WriteString(p.s[i : i+quote])
			p.pos = i + quote + 1
			return b.String(), nil
		}
		b.WriteString(p.s[i : i+esc])
		i += esc + 1
		if i >= len(p.s) {
			return "", p.errorAt(len(p.s), "unterminated string starting at column %d", p.column(start-1))
		}
		e := strings.IndexByte(`"\nrt`, p.s[i])
		if e < 0 {
			return "", p.errorAt(i-1, "unknown escape sequence \\%c (want \\\" \\\\ \\n \\r or \\t)", p.s[i])
		}
		b.WriteByte("\"\\\n\r\t"[e])
		i++
	}
}

// literal reads the exact text lit.
func (p *parser) literal(lit string) error {
	if !strings.HasPrefix(p.s[p.pos:], lit) {
		for i := 0; i < len(lit); i++ {
			if p.pos+i >= len(p.s) || p.s[p.pos+i] != lit[i] {
				return p.expected(p.pos+i, "'"+lit[i:i+1]+"'")
			}
		}
	}
	p.pos += len(lit)
	return nil
}

func (p *parser) expect(c byte) error {
	if !p.peek(c) {
		return p.expected(p.pos, "'"+string(c)+"'")
	}
	p.pos++
	return nil
}

func (p *parser) peek(c byte) bool { return p.pos < len(p.s) && p.s[p.pos] == c }

func (p *parser) errorf(format string, args ...any) error {
	return p.errorAt(p.pos, format, args...)
}

// expected reports that the byte at offset off is not what the format needs.
func (p *parser) expected(off int, what string) error {
	if off >= len(p.s) {
		return p.errorAt(off, "expected %s, found end of input", what)
	}
	return p.errorAt(off, "expected %s, found %q", what, p.s[off])
}

// errorAt returns a *SyntaxError for the byte at offset off.
func (p *parser) errorAt(off int, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	line := 1 + strings.Count(p.s[:off], "\n")
	return &SyntaxError{Line: line, Column: p.column(off), Msg: msg}
}

// column is the 1-based byte column of offset off on its line.
func (p *parser) column(off int) int {
	return off - strings.LastIndexByte(p.s[:off], '\n')
}

// firstDuplicate returns a string that occurs twice in list, or "".
func firstDuplicate(list []string) string {
	if len(list) < 2 {
		return ""
	}
	sorted := slices.Clone(list)
	slices.Sort(sorted)
	for i := 1; i < len(sorted); i++ {
		if sorted[i] == sorted[i-1] {
			return sorted[i]
		}
	}
	return ""
}
