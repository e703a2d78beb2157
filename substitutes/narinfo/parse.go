package narinfo

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tbfg/tbfg-node/store"
)

// signatureTag starts Guix's signature field. Guix takes everything before its
// first occurrence anywhere in the text as the signed part.
const signatureTag = "Signature:"

// tailFields are the fields that may follow the first Signature line: they are
// not covered by Guix signatures, so nothing else may appear there.
var tailFields = map[string]bool{
	"Signature": true, "Sig": true, "URL": true, "Compression": true, "FileHash": true, "FileSize": true,
}

// headFields are the known fields that must lie inside the signed part.
var headFields = map[string]bool{
	"StorePath": true, "NarHash": true, "NarSize": true, "References": true,
	"Deriver": true, "System": true, "CA": true,
}

// Parse reads a narinfo in any of the three layouts. Store paths must lie in
// dir. Unknown fields are ignored, as Guix and Nix do; after the first
// Signature line only URL blocks, Signature and Sig lines may follow, since
// nothing there is signed.
func Parse(data []byte, dir store.Dir) (*Narinfo, error) {
	if err := dir.Validate(); err != nil {
		return nil, err
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrSyntax, len(data), MaxSize)
	}
	if err := checkText(data); err != nil {
		return nil, err
	}
	p := &parser{dir: dir, n: &Narinfo{}, seen: map[string]int{}}
	rest := data
	for lineNo := 1; len(rest) > 0; lineNo++ {
		if lineNo > MaxLines {
			return nil, fmt.Errorf("%w: more than %d lines", ErrSyntax, MaxLines)
		}
		line, next, _ := bytes.Cut(rest, []byte("\n"))
		if len(line) > MaxLineLen {
			return nil, fmt.Errorf("%w: line %d: %d bytes, the limit is %d", ErrSyntax, lineNo, len(line), MaxLineLen)
		}
		if err := p.line(lineNo, string(line), data[:len(data)-len(rest)]); err != nil {
			return nil, err
		}
		rest = next
	}
	return p.finish()
}

// checkText rejects text that Guix would read differently from us: invalid
// UTF-8 (Guix decodes the text before hashing the signed part) and
// "Signature:" anywhere but at the start of a line.
func checkText(data []byte) error {
	if !utf8.Valid(data) {
		i := 0
		for utf8.FullRune(data[i:]) {
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size == 1 {
				break
			}
			i += size
		}
		return fmt.Errorf("%w: line %d: not valid UTF-8", ErrSyntax, lineOf(data, i))
	}
	if i := bytes.Index(data, []byte(signatureTag)); i > 0 && data[i-1] != '\n' {
		return fmt.Errorf("%w: line %d: %q inside a line; Guix would end the signed part there", ErrSyntax, lineOf(data, i), signatureTag)
	}
	return nil
}

func lineOf(data []byte, offset int) int { return bytes.Count(data[:offset], []byte("\n")) + 1 }

// parser holds the state of one Parse call.
type parser struct {
	dir  store.Dir
	n    *Narinfo
	seen map[string]int // line of each single-valued field
	file *File          // URL block being read, nil outside one
	// block holds the fields read in the current URL block, which starts on
	// blockLine.
	block     map[string]bool
	blockLine int
	// urlLine and narHashLine locate the first URL and NarHash, which tells
	// the layout.
	urlLine, narHashLine int
	signed               bool // a Signature line has been read
}

// line reads one "Name: value" line; before is the text preceding it.
func (p *parser) line(lineNo int, line string, before []byte) error {
	if line == "" {
		return fmt.Errorf("%w: line %d: empty line", ErrSyntax, lineNo)
	}
	name, value, ok := strings.Cut(line, ": ")
	if !ok || !validName(name) {
		return fmt.Errorf("%w: line %d: want \"Name: value\", got %.40q", ErrSyntax, lineNo, line)
	}
	if p.signed && !tailFields[name] {
		if !headFields[name] {
			return nil // unknown and unsigned: ignored
		}
		return fmt.Errorf("%w: line %d: %s after the Signature line, where nothing is signed", ErrSyntax, lineNo, name)
	}
	if err := p.field(lineNo, name, value, before); err != nil {
		return fmt.Errorf("%w: line %d: %s: %w", ErrSyntax, lineNo, name, err)
	}
	return nil
}

// validName accepts field names of printable ASCII without a colon.
func validName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c > '~' || c == ':' {
			return false
		}
	}
	return true
}

// field stores one field's value.
func (p *parser) field(lineNo int, name, value string, before []byte) error {
	if headFields[name] {
		if prev, ok := p.seen[name]; ok {
			return fmt.Errorf("repeats the field of line %d", prev)
		}
		p.seen[name] = lineNo
	}
	switch name {
	case "StorePath", "NarHash", "NarSize", "References", "Deriver":
		return p.storeField(lineNo, name, value)
	case "System":
		p.n.System = value
	case "CA":
		p.n.CA = value
	case "URL", "Compression", "FileHash", "FileSize":
		return p.fileField(lineNo, name, value)
	case "Signature":
		return p.signature(value, before)
	case "Sig":
		if value == "" {
			return fmt.Errorf("empty value")
		}
		p.n.Sigs = append(p.n.Sigs, value)
	}
	return nil
}

// storeField reads the fields that describe the store item.
func (p *parser) storeField(lineNo int, name, value string) error {
	var err error
	switch name {
	case "StorePath":
		p.n.StorePath, err = p.dir.ParsePath(value)
	case "NarHash":
		p.narHashLine = lineNo
		p.n.NarHash, err = value, checkHash(value)
	case "NarSize":
		p.n.NarSize, err = parseSize(value)
	case "References":
		p.n.References, err = parseReferences(value)
	case "Deriver":
		if value != "" && value != "unknown-deriver" { // Nix's spelling of none
			p.n.Deriver, err = value, store.ValidateBase(value)
		}
	}
	return err
}

func parseSize(value string) (uint64, error) {
	n, err := strconv.ParseUint(value, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size in bytes", value)
	}
	if n == 0 {
		return 0, fmt.Errorf("size 0; a NAR is never empty")
	}
	return n, nil
}

func parseReferences(value string) ([]string, error) {
	refs := strings.Fields(value)
	for _, r := range refs {
		if err := store.ValidateBase(r); err != nil {
			return nil, fmt.Errorf("%q: %w", r, err)
		}
	}
	if len(refs) == 0 {
		return nil, nil
	}
	return refs, nil
}

// fileField reads the lines of a URL block: URL starts one, the others belong
// to the block started last and appear at most once in it.
func (p *parser) fileField(lineNo int, name, value string) error {
	if name == "URL" {
		if value == "" {
			return fmt.Errorf("empty value")
		}
		if p.urlLine == 0 {
			p.urlLine = lineNo
		}
		p.n.Files = append(p.n.Files, File{URL: value})
		p.file = &p.n.Files[len(p.n.Files)-1]
		p.blockLine, p.block = lineNo, map[string]bool{}
		return nil
	}
	if p.file == nil {
		return fmt.Errorf("no URL line opens its block")
	}
	if p.block[name] {
		return fmt.Errorf("repeats the field of the URL block of line %d", p.blockLine)
	}
	p.block[name] = true
	var err error
	switch name {
	case "Compression":
		p.file.Compression = value
	case "FileHash":
		p.file.FileHash, err = value, checkHash(value)
	case "FileSize":
		// 0 is how some servers say "unknown"; it is printed as no FileSize.
		p.file.FileSize, err = strconv.ParseUint(value, 10, 64)
		if err != nil {
			err = fmt.Errorf("%q is not a size in bytes", value)
		}
	}
	return err
}

// signature records a Signature line; the first one ends the signed part.
func (p *parser) signature(value string, before []byte) error {
	if value == "" {
		return fmt.Errorf("empty value")
	}
	if !p.signed {
		p.signed = true
		p.n.Signed = bytes.Clone(before)
		p.n.signedFiles, p.n.signedSigs = len(p.n.Files), len(p.n.Sigs)
		p.file = nil // a block may not continue past the signed part
	}
	p.n.Signatures = append(p.n.Signatures, value)
	return nil
}

// finish checks for the required fields and works out the layout.
func (p *parser) finish() (*Narinfo, error) {
	for _, name := range []string{"StorePath", "NarHash", "NarSize"} {
		if _, ok := p.seen[name]; !ok {
			return nil, fmt.Errorf("%w: no %s field", ErrSyntax, name)
		}
	}
	if len(p.n.Files) == 0 {
		return nil, fmt.Errorf("%w: no URL field; a client could not download the NAR", ErrSyntax)
	}
	p.n.Layout = p.layout()
	return p.n, nil
}

// layout tells the layout from where the first URL lies and from the fields
// only Nix writes; an unsigned narinfo with the URL first is taken as Nix's.
func (p *parser) layout() Layout {
	if p.urlLine > p.narHashLine {
		return LayoutGuix
	}
	nixOnly := p.n.CA != "" || p.signed && p.n.signedSigs > 0 || !p.signed && len(p.n.Sigs) > 0
	for _, f := range p.n.Files {
		nixOnly = nixOnly || f.FileHash != ""
	}
	if p.signed && !nixOnly {
		return LayoutGuixOld
	}
	return LayoutNix
}
