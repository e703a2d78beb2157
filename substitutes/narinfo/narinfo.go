package narinfo

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/store/nixbase32"
)

// Limits on untrusted input. A narinfo is a few hundred bytes; the limits leave
// room for store items with thousands of references.
const (
	// MaxSize is the largest narinfo Parse accepts, in bytes.
	MaxSize = 4 << 20
	// MaxLineLen is the longest line Parse accepts, in bytes.
	MaxLineLen = 1 << 20
	// MaxLines is the largest number of lines Parse accepts.
	MaxLines = 1000
)

// Errors wrapped by parsing, printing and signing.
var (
	// ErrSyntax is wrapped by every error about malformed narinfo text; the
	// message names the line and the field.
	ErrSyntax = errors.New("invalid narinfo")
	// ErrInvalid is returned by Validate and Marshal for a Narinfo whose fields
	// cannot be printed as a narinfo that parses back to the same fields.
	ErrInvalid = errors.New("invalid narinfo fields")
	// ErrSignedFiles is returned by SetFiles when the URL blocks are inside the
	// signed part (Guix's old layout) and cannot change without re-signing.
	ErrSignedFiles = errors.New("URL blocks are covered by the signature")
)

// Layout is the order in which a narinfo's fields are printed.
type Layout int

const (
	// LayoutGuix is the layout of today's `guix publish`: StorePath, NarHash,
	// NarSize, References, System, Deriver, the Signature, then one URL,
	// Compression, FileSize block per compression, outside the signed part.
	LayoutGuix Layout = iota
	// LayoutGuixOld is the layout of `guix publish` before 1.2: StorePath and
	// the URL blocks before NarHash, everything before the Signature signed.
	LayoutGuixOld
	// LayoutNix is the layout Nix writes: StorePath, URL, Compression,
	// FileHash, FileSize, NarHash, NarSize, References, Deriver, System, Sig
	// lines, CA.
	LayoutNix
)

// String names l.
func (l Layout) String() string {
	switch l {
	case LayoutGuix:
		return "guix"
	case LayoutGuixOld:
		return "guix-old"
	case LayoutNix:
		return "nix"
	}
	return "layout(" + strconv.Itoa(int(l)) + ")"
}

// File is one way to download the NAR: a URL (usually relative to the
// substitute server, e.g. nar/zstd/<hash>-<name>) and what the client finds
// there.
type File struct {
	URL         string // where to download the NAR, usually relative
	Compression string // "none", "gzip", "lzip", "zstd", "xz", …; "" when absent
	FileHash    string // hash of the compressed file (Nix), "" when absent
	FileSize    uint64 // size of the compressed file, 0 when unknown
}

// Narinfo is the description of a store item that a substitute server hands
// out as /<hash>.narinfo.
//
// Signed holds the exact bytes before the first Signature line of a narinfo
// read by Parse, so that printing it again reproduces the signed part byte for
// byte; it is nil for an unsigned narinfo and for one built from fields. While
// Signed is set, the fields it covers are printed from it and changes to them
// are not printed: set Signed to nil to print and sign changed fields.
type Narinfo struct {
	StorePath  store.Path // the item described
	NarHash    string     // sha256:<nix-base32> of the NAR
	NarSize    uint64     // size of the NAR in bytes
	References []string   // base names (<hash>-<name>) of the referenced items
	Deriver    string     // base name of the .drv, "" when unknown
	System     string     // e.g. x86_64-linux, "" when absent
	CA         string     // Nix's content address, "" when absent
	Files      []File     // one block per compression

	// Signatures are the values of Guix's Signature lines, "1;<host>;<base64>".
	// Guix checks only the first.
	Signatures []string
	// Sigs are the values of Nix's Sig lines, "<key name>:<base64>".
	Sigs []string

	// Layout is the order the fields are printed in when Signed is nil.
	Layout Layout
	// Signed is the verbatim text covered by Guix signatures (see above).
	Signed []byte

	// signedFiles and signedSigs count the leading Files and Sigs that lie
	// inside Signed; only the rest is printed after it.
	signedFiles, signedSigs int
}

// Paths returns the full store paths of n's references, in n's order.
func (n *Narinfo) Paths() []store.Path {
	dir := string(n.StorePath.Dir())
	out := make([]store.Path, len(n.References))
	for i, r := range n.References {
		out[i] = store.Path(dir + "/" + r)
	}
	return out
}

// SetFiles replaces the URL blocks printed after the signature, e.g. so that a
// server points them at itself, without touching the signed part. It fails
// with ErrSignedFiles for a signed narinfo in the old layout.
func (n *Narinfo) SetFiles(files []File) error {
	if n.Signed != nil && n.signedFiles > 0 {
		return fmt.Errorf("%w: the narinfo has the old layout; re-sign it to change them", ErrSignedFiles)
	}
	n.Files = append([]File(nil), files...)
	n.signedFiles = 0
	return nil
}

// Marshal prints n: the signed part (Signed verbatim, or the fields in n's
// layout), the Signature lines, then what lies outside the signed part.
func (n *Narinfo) Marshal() ([]byte, error) {
	if err := n.Validate(); err != nil {
		return nil, err
	}
	head, err := n.head()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Write(head)
	for _, s := range n.Signatures {
		field(&b, "Signature", s)
	}
	n.writeTail(&b)
	return b.Bytes(), nil
}

// head returns the text that Guix signatures cover.
func (n *Narinfo) head() ([]byte, error) {
	if n.Signed != nil {
		return n.Signed, nil
	}
	var b bytes.Buffer
	switch n.Layout {
	case LayoutNix:
		n.writeNix(&b)
	case LayoutGuixOld:
		field(&b, "StorePath", string(n.StorePath))
		writeFiles(&b, n.Files)
		n.writeGuixFields(&b)
	default:
		n.writeGuixFields(&b)
	}
	if i := bytes.Index(b.Bytes(), []byte(signatureTag)); i >= 0 {
		line := bytes.Count(b.Bytes()[:i], []byte("\n")) + 1
		return nil, fmt.Errorf("%w: line %d would contain %q, which Guix takes as the start of the signature", ErrInvalid, line, signatureTag)
	}
	return b.Bytes(), nil
}

// writeTail prints the URL blocks and Sig lines that lie outside the signed
// part.
func (n *Narinfo) writeTail(b *bytes.Buffer) {
	files, sigs := n.Files, n.Sigs
	switch {
	case n.Signed != nil:
		files, sigs = files[min(n.signedFiles, len(files)):], sigs[min(n.signedSigs, len(sigs)):]
	case n.Layout == LayoutNix:
		files, sigs = nil, nil
	case n.Layout == LayoutGuixOld:
		files = nil
	}
	writeFiles(b, files)
	for _, s := range sigs {
		field(b, "Sig", s)
	}
}

// writeGuixFields prints the fields of the modern layout's signed part, in
// the order `guix publish` uses (StorePath only when not yet printed).
func (n *Narinfo) writeGuixFields(b *bytes.Buffer) {
	if n.Layout != LayoutGuixOld {
		field(b, "StorePath", string(n.StorePath))
	}
	field(b, "NarHash", n.NarHash)
	field(b, "NarSize", strconv.FormatUint(n.NarSize, 10))
	field(b, "References", strings.Join(n.References, " "))
	optField(b, "System", n.System)
	optField(b, "Deriver", n.Deriver)
	optField(b, "CA", n.CA)
}

// writeNix prints every field in the order of Nix's NarInfo::to_string.
func (n *Narinfo) writeNix(b *bytes.Buffer) {
	field(b, "StorePath", string(n.StorePath))
	writeFiles(b, n.Files)
	field(b, "NarHash", n.NarHash)
	field(b, "NarSize", strconv.FormatUint(n.NarSize, 10))
	field(b, "References", strings.Join(n.References, " "))
	optField(b, "Deriver", n.Deriver)
	optField(b, "System", n.System)
	for _, s := range n.Sigs {
		field(b, "Sig", s)
	}
	optField(b, "CA", n.CA)
}

func writeFiles(b *bytes.Buffer, files []File) {
	for _, f := range files {
		field(b, "URL", f.URL)
		optField(b, "Compression", f.Compression)
		optField(b, "FileHash", f.FileHash)
		if f.FileSize != 0 {
			field(b, "FileSize", strconv.FormatUint(f.FileSize, 10))
		}
	}
}

func field(b *bytes.Buffer, name, value string) {
	b.WriteString(name)
	b.WriteString(": ")
	b.WriteString(value)
	b.WriteByte('\n')
}

func optField(b *bytes.Buffer, name, value string) {
	if value != "" {
		field(b, name, value)
	}
}

// Validate checks that every field of n can be printed and parsed back: a
// valid store path, NarHash and references, a non-zero NarSize, at least one
// URL, and no line breaks in any value.
func (n *Narinfo) Validate() error {
	dir := n.StorePath.Dir()
	if _, err := dir.ParsePath(string(n.StorePath)); err != nil {
		return fmt.Errorf("%w: StorePath: %w", ErrInvalid, err)
	}
	if err := checkHash(n.NarHash); err != nil {
		return fmt.Errorf("%w: NarHash: %w", ErrInvalid, err)
	}
	if n.NarSize == 0 {
		return fmt.Errorf("%w: NarSize is 0; a NAR is never empty", ErrInvalid)
	}
	for _, r := range n.References {
		if err := store.ValidateBase(r); err != nil {
			return fmt.Errorf("%w: reference %q: %w", ErrInvalid, r, err)
		}
	}
	if n.Deriver != "" {
		if err := store.ValidateBase(n.Deriver); err != nil {
			return fmt.Errorf("%w: Deriver %q: %w", ErrInvalid, n.Deriver, err)
		}
	}
	if len(n.Files) == 0 {
		return fmt.Errorf("%w: no URL; a client could not download the NAR", ErrInvalid)
	}
	return n.validateValues()
}

// validateValues checks the free-form values for what would break the line
// format.
func (n *Narinfo) validateValues() error {
	check := func(name, v string, required bool) error {
		if required && v == "" {
			return fmt.Errorf("%w: %s is empty", ErrInvalid, name)
		}
		if strings.ContainsRune(v, '\n') || !utf8.ValidString(v) {
			return fmt.Errorf("%w: %s %q has a line break or is not UTF-8", ErrInvalid, name, v)
		}
		return nil
	}
	errs := []error{check("System", n.System, false), check("CA", n.CA, false)}
	for _, f := range n.Files {
		errs = append(errs, check("URL", f.URL, true), check("Compression", f.Compression, false))
		if f.FileHash != "" {
			if err := checkHash(f.FileHash); err != nil {
				errs = append(errs, fmt.Errorf("%w: FileHash: %w", ErrInvalid, err))
			}
		}
	}
	for _, s := range n.Signatures {
		errs = append(errs, check("Signature", s, true))
	}
	for _, s := range n.Sigs {
		errs = append(errs, check("Sig", s, true))
	}
	return errors.Join(errs...)
}

// checkHash accepts sha256:<nix-base32>, the only form Guix reads.
func checkHash(s string) error {
	digest, ok := strings.CutPrefix(s, "sha256:")
	if !ok {
		return fmt.Errorf("%q: want sha256:<nix-base32>", s)
	}
	b, err := nixbase32.Decode(digest)
	if err != nil {
		return fmt.Errorf("%q: %w", s, err)
	}
	if len(b) != 32 {
		return fmt.Errorf("%q: %d-byte digest, want 32", s, len(b))
	}
	return nil
}
