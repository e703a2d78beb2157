package nar

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Reader reads a NAR from an untrusted stream, one entry at a time, like
// archive/tar's Reader: Next returns each entry's Header in archive order and
// Read returns the current regular file's contents. It accepts exactly the
// archives Writer produces (the canonical form Nix writes) and reports
// anything else as a *FormatError naming the byte offset and the entry.
//
// Memory use is bounded by MaxDepth, whatever the input.
type Reader struct {
	// MaxFileSize bounds the contents of one regular file (0 or less: only
	// empty files); set it before the first Next. NewReader sets
	// DefaultMaxFileSize.
	MaxFileSize int64
	// MaxDepth bounds directory nesting (the root directory is depth 1); set
	// it before the first Next. NewReader sets DefaultMaxDepth.
	MaxDepth int

	r         *bufio.Reader
	off       int64     // bytes consumed from r
	tokOff    int64     // offset of the token being parsed, for errors
	path      string    // entry being parsed, for errors
	open      []openDir // directories whose entries are being read
	next      step      // what the next call to Next does first
	fileDepth int       // len(open) when the current file's header was read
	remaining int64     // unread bytes of the current file's contents
	size      int64     // the current file's size, for its padding
	err       error     // sticky: a Reader that failed stays failed
	buf       [maxTokenLen]byte
}

// step is the Reader's position in the grammar between calls to Next.
type step uint8

const (
	stepStart      step = iota // before the magic string
	stepFileEnd                // after a regular file's header: contents, padding, ")"
	stepNodeEnd                // after a node's ")": the ")" of its entry, if any
	stepDirEntries             // inside a directory: "entry" or ")"
	stepDone                   // the archive ended cleanly
)

// NewReader returns a Reader of the archive in r with the default limits.
func NewReader(r io.Reader) *Reader {
	return &Reader{
		MaxFileSize: DefaultMaxFileSize,
		MaxDepth:    DefaultMaxDepth,
		r:           bufio.NewReaderSize(r, 64<<10),
	}
}

// Next advances to the next entry, skipping any unread contents of the
// current file. At the end of the archive it returns io.EOF, after checking
// that nothing follows it.
func (nr *Reader) Next() (*Header, error) {
	if nr.err != nil {
		return nil, nr.err
	}
	h, err := nr.advance()
	if err == io.EOF {
		nr.err = io.EOF
		return nil, io.EOF
	}
	if err != nil {
		return nil, nr.fail(err)
	}
	return h, nil
}

// advance runs the grammar from the current step to the next header.
func (nr *Reader) advance() (*Header, error) {
	for {
		switch nr.next {
		case stepStart:
			if err := nr.expect(magic); err != nil {
				if errors.Is(err, ErrUnexpectedToken) || errors.Is(err, ErrTooLong) {
					return nil, ErrNotNAR
				}
				return nil, err
			}
			return nr.node("/")
		case stepFileEnd:
			if err := nr.endFile(); err != nil {
				return nil, err
			}
		case stepNodeEnd:
			if err := nr.endNode(); err != nil {
				return nil, err
			}
		case stepDirEntries:
			if h, err := nr.entry(); h != nil || err != nil {
				return h, err
			}
		case stepDone:
			return nil, io.EOF
		}
	}
}

// node parses a node from its "(" up to its contents (regular files), its
// ")" (symlinks) or its first entry (directories).
func (nr *Reader) node(path string) (*Header, error) {
	nr.path = path
	if err := nr.expect("(", "type"); err != nil {
		return nil, err
	}
	tok, err := nr.token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case "regular":
		return nr.regular(path)
	case "symlink":
		return nr.symlink(path)
	case "directory":
		if len(nr.open) >= nr.MaxDepth {
			return nil, fmt.Errorf("%w: limit %d", ErrTooDeep, nr.MaxDepth)
		}
		nr.open = append(nr.open, openDir{path: path})
		nr.next = stepDirEntries
		return &Header{Path: path, Type: TypeDirectory}, nil
	}
	return nil, fmt.Errorf("%w: expected \"regular\", \"symlink\" or \"directory\", got %q", ErrUnexpectedToken, tok)
}

func (nr *Reader) regular(path string) (*Header, error) {
	h := &Header{Path: path, Type: TypeRegular}
	tok, err := nr.token()
	if err != nil {
		return nil, err
	}
	if tok == "executable" {
		h.Executable = true
		if err := nr.expect("", "contents"); err != nil {
			return nil, err
		}
	} else if tok != "contents" {
		return nil, fmt.Errorf("%w: expected \"executable\" or \"contents\", got %q", ErrUnexpectedToken, tok)
	}
	nr.tokOff = nr.off
	size, err := nr.u64()
	if err != nil {
		return nil, err
	}
	if size > uint64(max(nr.MaxFileSize, 0)) {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, size, nr.MaxFileSize)
	}
	h.Size = int64(size)
	nr.size, nr.remaining, nr.fileDepth = h.Size, h.Size, len(nr.open)
	nr.next = stepFileEnd
	return h, nil
}

func (nr *Reader) symlink(path string) (*Header, error) {
	if err := nr.expect("target"); err != nil {
		return nil, err
	}
	target, err := nr.str(MaxTargetLen)
	if err != nil {
		return nil, err
	}
	if err := checkTarget(target); err != nil {
		return nil, err
	}
	if err := nr.expect(")"); err != nil {
		return nil, err
	}
	nr.next = stepNodeEnd
	return &Header{Path: path, Type: TypeSymlink, LinkTarget: target}, nil
}

// entry parses the next entry of the innermost directory up to its node, or
// the directory's end (returning nil, nil).
func (nr *Reader) entry() (*Header, error) {
	d := &nr.open[len(nr.open)-1]
	nr.path = d.path
	tok, err := nr.token()
	if err != nil {
		return nil, err
	}
	if tok == ")" {
		nr.open = nr.open[:len(nr.open)-1]
		nr.next = stepNodeEnd
		return nil, nil
	}
	if tok != "entry" {
		return nil, fmt.Errorf("%w: expected \"entry\" or \")\", got %q", ErrUnexpectedToken, tok)
	}
	if err := nr.expect("(", "name"); err != nil {
		return nil, err
	}
	name, err := nr.str(MaxNameLen)
	if err != nil {
		return nil, err
	}
	if err := checkEntryName(d, name); err != nil {
		return nil, err
	}
	d.last = name
	if err := nr.expect("node"); err != nil {
		return nil, err
	}
	return nr.node(joinPath(d.path, name))
}

// checkEntryName checks name as the next entry of d.
func checkEntryName(d *openDir, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	switch {
	case name == d.last:
		return fmt.Errorf("%w %q", ErrDuplicate, name)
	case name < d.last:
		return fmt.Errorf("%w: %q after %q", ErrUnsorted, name, d.last)
	}
	return nil
}

// endFile skips what is left of the current file's contents, then checks its
// padding and closing ")".
func (nr *Reader) endFile() error {
	if nr.remaining > 0 {
		n, err := nr.r.Discard(int(min(nr.remaining, 1<<30)))
		nr.off += int64(n)
		nr.remaining -= int64(n)
		if err != nil {
			return nr.ioErr(err)
		}
		return nil // loop again until the contents are skipped
	}
	nr.tokOff = nr.off
	if err := nr.padding(nr.size); err != nil {
		return err
	}
	if err := nr.expect(")"); err != nil {
		return err
	}
	nr.next = stepNodeEnd
	return nil
}

// endNode finishes a node: at the root it checks that the input ends there;
// inside a directory it reads the ")" of the entry holding the node.
func (nr *Reader) endNode() error {
	if len(nr.open) == 0 {
		nr.tokOff, nr.path = nr.off, ""
		if _, err := nr.r.Peek(1); err != io.EOF {
			if err != nil {
				return err
			}
			return ErrTrailingData
		}
		nr.next = stepDone
		return nil
	}
	if err := nr.expect(")"); err != nil {
		return err
	}
	nr.path = nr.open[len(nr.open)-1].path
	nr.next = stepDirEntries
	return nil
}

// Read reads the contents of the current regular file. It returns io.EOF at
// the end of the contents, and 0, io.EOF for entries that are not regular
// files.
func (nr *Reader) Read(p []byte) (int, error) {
	if nr.err != nil {
		return 0, nr.err
	}
	if nr.next != stepFileEnd || nr.remaining == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > nr.remaining {
		p = p[:nr.remaining]
	}
	n, err := nr.r.Read(p)
	nr.off += int64(n)
	nr.remaining -= int64(n)
	if err != nil && !(err == io.EOF && n > 0) {
		nr.tokOff = nr.off
		return n, nr.fail(nr.ioErr(err))
	}
	return n, nil
}

// expect reads one token per want and checks each.
func (nr *Reader) expect(want ...string) error {
	for _, w := range want {
		tok, err := nr.token()
		if err != nil {
			return err
		}
		if tok != w {
			return fmt.Errorf("%w: expected %q, got %q", ErrUnexpectedToken, w, tok)
		}
	}
	return nil
}

// token reads a keyword of the format, which is never longer than
// maxTokenLen, without allocating.
func (nr *Reader) token() (string, error) {
	nr.tokOff = nr.off
	n, err := nr.u64()
	if err != nil {
		return "", err
	}
	if n > maxTokenLen {
		return "", fmt.Errorf("%w: expected a keyword, got a string of %d bytes", ErrUnexpectedToken, n)
	}
	if err := nr.full(nr.buf[:n]); err != nil {
		return "", err
	}
	if err := nr.padding(int64(n)); err != nil {
		return "", err
	}
	return keyword(nr.buf[:n]), nil
}

// keyword returns b as a string, without allocating for the keywords of the
// format.
func keyword(b []byte) string {
	for _, k := range [...]string{"(", ")", "type", "entry", "name", "node", "regular", "contents", "executable", "symlink", "target", "directory", "", magic} {
		if string(b) == k {
			return k
		}
	}
	return string(b)
}

// str reads a string of at most max bytes.
func (nr *Reader) str(max int) (string, error) {
	nr.tokOff = nr.off
	n, err := nr.u64()
	if err != nil {
		return "", err
	}
	if n > uint64(max) {
		return "", fmt.Errorf("%w: %d bytes, limit %d", ErrTooLong, n, max)
	}
	b := make([]byte, n)
	if err := nr.full(b); err != nil {
		return "", err
	}
	if err := nr.padding(int64(n)); err != nil {
		return "", err
	}
	return string(b), nil
}

func (nr *Reader) u64() (uint64, error) {
	var b [8]byte
	if err := nr.full(b[:]); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}

// padding reads and checks the zeros after a string of length n.
func (nr *Reader) padding(n int64) error {
	var b [8]byte
	p := b[:padLen(n)]
	at := nr.off
	if err := nr.full(p); err != nil {
		return err
	}
	for _, c := range p {
		if c != 0 {
			nr.tokOff = at
			return ErrBadPadding
		}
	}
	return nil
}

func (nr *Reader) full(p []byte) error {
	n, err := io.ReadFull(nr.r, p)
	nr.off += int64(n)
	if err != nil {
		return nr.ioErr(err)
	}
	return nil
}

// ioErr turns the end of input into ErrTruncated.
func (nr *Reader) ioErr(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		nr.tokOff = nr.off
		return ErrTruncated
	}
	return err
}

// fail records err as a FormatError at the current token and entry.
func (nr *Reader) fail(err error) error {
	var fe *FormatError
	if !errors.As(err, &fe) {
		err = &FormatError{Offset: nr.tokOff, Path: nr.path, Err: err}
	}
	nr.err = err
	return err
}
