package nar

import (
	"encoding/binary"
	"fmt"
	"io"
)

// magic is the first string of every archive.
const magic = "nix-archive-1"

// bufSize is the Writer's output buffer: large, so that the destination (a
// hash, a pipe) sees few, big writes.
const bufSize = 1 << 20

// Writer writes a NAR from a sequence of entries, like archive/tar's Writer:
// WriteHeader for each entry in archive order (the root "/" first, then each
// directory's entries sorted by name, depth first), Write for a regular file's
// contents, Close at the end. It checks the order, so it only ever writes
// archives that a Reader accepts.
type Writer struct {
	w         io.Writer
	buf       []byte
	open      []openDir // directories whose entries are still being written
	started   bool
	inFile    bool  // a regular file's contents are being written
	fileDepth int   // len(open) when the file's header was written
	remaining int64 // contents bytes still owed for the current file
	size      int64 // the current file's size, for its padding
	err       error // sticky: a Writer that failed stays failed
}

// openDir is a directory of the archive being written or read.
type openDir struct {
	path string
	last string // name of its last entry so far, "" before the first
}

// NewWriter returns a Writer that writes an archive to w. Nothing reaches w
// before the buffer fills or Close is called.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w, buf: getBuf()}
}

// WriteHeader starts the next entry. For a regular file, the next Size bytes
// given to Write are its contents.
func (w *Writer) WriteHeader(h *Header) error {
	if w.err != nil {
		return w.err
	}
	if err := w.finishFile(); err != nil {
		return w.fail(err)
	}
	if err := checkHeader(h); err != nil {
		return w.fail(err)
	}
	if !w.started {
		if h.Path != "/" {
			return w.fail(fmt.Errorf("%w: first entry is %q, want the root \"/\"", ErrWriteOrder, h.Path))
		}
		w.started = true
		w.str(magic)
		return w.node(h)
	}
	if err := w.enter(h.Path); err != nil {
		return w.fail(err)
	}
	_, name := splitPath(h.Path)
	w.str("entry")
	w.str("(")
	w.str("name")
	w.str(name)
	w.str("node")
	return w.node(h)
}

// checkHeader validates the fields of h on their own.
func checkHeader(h *Header) error {
	if h.Path != "/" {
		if len(h.Path) < 2 || h.Path[0] != '/' {
			return fmt.Errorf("%w: path %q does not start with '/'", ErrBadName, h.Path)
		}
		if err := checkName(lastName(h.Path)); err != nil {
			return fmt.Errorf("path %q: %w", h.Path, err)
		}
	}
	switch h.Type {
	case TypeRegular:
		if h.Size < 0 {
			return fmt.Errorf("%w: %q has negative size %d", ErrContentsSize, h.Path, h.Size)
		}
	case TypeSymlink:
		if err := checkTarget(h.LinkTarget); err != nil {
			return fmt.Errorf("%q: %w", h.Path, err)
		}
	case TypeDirectory:
	default:
		return fmt.Errorf("%w: %q has type %v", ErrUnsupported, h.Path, h.Type)
	}
	return nil
}

// lastName returns the part of p after its last '/'.
func lastName(p string) string {
	_, name := splitPath(p)
	return name
}

// enter closes the open directories that cannot hold path and checks that
// path is the next entry of the innermost one.
func (w *Writer) enter(path string) error {
	parent, name := splitPath(path)
	for len(w.open) > 0 && w.open[len(w.open)-1].path != parent {
		w.closeDir()
	}
	if len(w.open) == 0 {
		return fmt.Errorf("%w: %q is not inside an open directory", ErrWriteOrder, path)
	}
	d := &w.open[len(w.open)-1]
	if name <= d.last {
		return fmt.Errorf("%w: %q after %q", ErrWriteOrder, name, d.last)
	}
	d.last = name
	return nil
}

// node writes an entry's node up to its contents (regular files), to its end
// (symlinks), or to its first entry (directories).
func (w *Writer) node(h *Header) error {
	w.str("(")
	w.str("type")
	switch h.Type {
	case TypeRegular:
		w.str("regular")
		if h.Executable {
			w.str("executable")
			w.str("")
		}
		w.str("contents")
		w.u64(uint64(h.Size))
		w.inFile, w.fileDepth, w.remaining, w.size = true, len(w.open), h.Size, h.Size
	case TypeSymlink:
		w.str("symlink")
		w.str("target")
		w.str(h.LinkTarget)
		w.endNode(len(w.open))
	case TypeDirectory:
		w.str("directory")
		w.open = append(w.open, openDir{path: h.Path})
	}
	return w.flushIfFull()
}

// endNode closes a node and, when it is a directory entry (depth > 0), the
// entry around it.
func (w *Writer) endNode(depth int) {
	w.str(")")
	if depth > 0 {
		w.str(")")
	}
}

// closeDir ends the innermost open directory.
func (w *Writer) closeDir() {
	w.open = w.open[:len(w.open)-1]
	w.endNode(len(w.open))
}

// finishFile ends the current regular file, if any, once all its contents
// have been written.
func (w *Writer) finishFile() error {
	if !w.inFile {
		return nil
	}
	if w.remaining != 0 {
		return fmt.Errorf("%w: %d of %d bytes missing", ErrContentsSize, w.remaining, w.size)
	}
	w.inFile = false
	w.pad(w.size)
	w.endNode(w.fileDepth)
	return nil
}

// Write writes contents of the current regular file. Writing more than its
// Size is an error.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !w.inFile {
		return 0, w.fail(fmt.Errorf("%w: contents written when no regular file is open; call WriteHeader first", ErrContentsSize))
	}
	if int64(len(p)) > w.remaining {
		return 0, w.fail(fmt.Errorf("%w: %d bytes of contents beyond the file's size", ErrContentsSize, int64(len(p))-w.remaining))
	}
	w.remaining -= int64(len(p))
	if len(w.buf)+len(p) <= cap(w.buf) {
		w.buf = append(w.buf, p...)
		return len(p), w.flushIfFull()
	}
	if err := w.flush(); err != nil {
		return 0, err
	}
	if len(p) < cap(w.buf)/2 {
		w.buf = append(w.buf, p...)
		return len(p), nil
	}
	if _, err := w.w.Write(p); err != nil {
		return 0, w.fail(err)
	}
	return len(p), nil
}

// ReadFrom copies r to the current file's contents until r ends, reading
// straight into the output buffer so that io.Copy(w, file) costs no extra
// copy. r must hold exactly the bytes still owed (none for entries that are
// not regular files).
func (w *Writer) ReadFrom(r io.Reader) (int64, error) {
	if w.err != nil {
		return 0, w.err
	}
	n, err := w.copyContents(r)
	if err != nil {
		return n, err
	}
	var probe [1]byte
	m, err := io.ReadFull(r, probe[:])
	if m > 0 {
		return n, w.fail(fmt.Errorf("%w: more contents than the file's size", ErrContentsSize))
	}
	if err != io.EOF {
		return n, w.fail(err)
	}
	return n, nil
}

// copyContents reads the bytes still owed for the current file from r into
// the output buffer, failing if r ends before them.
func (w *Writer) copyContents(r io.Reader) (int64, error) {
	var total int64
	for w.inFile && w.remaining > 0 {
		if len(w.buf) == cap(w.buf) {
			if err := w.flush(); err != nil {
				return total, err
			}
		}
		free := w.buf[len(w.buf):cap(w.buf)]
		if int64(len(free)) > w.remaining {
			free = free[:w.remaining]
		}
		n, err := r.Read(free)
		w.buf = w.buf[:len(w.buf)+n]
		w.remaining -= int64(n)
		total += int64(n)
		if err == io.EOF && w.remaining > 0 {
			return total, w.fail(fmt.Errorf("%w: contents end %d bytes early", ErrContentsSize, w.remaining))
		}
		if err != nil && err != io.EOF {
			return total, w.fail(err)
		}
	}
	return total, nil
}

// Close ends the archive (closing every open directory) and flushes it. It
// does not close the underlying writer.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	if !w.started {
		return w.fail(fmt.Errorf("%w: archive has no root entry", ErrWriteOrder))
	}
	if err := w.finishFile(); err != nil {
		return w.fail(err)
	}
	for len(w.open) > 0 {
		w.closeDir()
	}
	if err := w.flush(); err != nil {
		return err
	}
	w.err = fmt.Errorf("%w: archive already closed", ErrWriteOrder)
	putBuf(w.buf)
	w.buf = nil
	return nil
}

func (w *Writer) fail(err error) error {
	w.err = err
	return err
}

// str appends one string of the format: length, bytes, zero padding.
func (w *Writer) str(s string) {
	w.u64(uint64(len(s)))
	w.buf = append(w.buf, s...)
	w.pad(int64(len(s)))
}

func (w *Writer) u64(n uint64) {
	w.buf = binary.LittleEndian.AppendUint64(w.buf, n)
}

// pad appends the zeros that round a string of length n up to 8 bytes.
func (w *Writer) pad(n int64) {
	var zeros [8]byte
	w.buf = append(w.buf, zeros[:padLen(n)]...)
}

// padLen is the number of padding bytes after a string of length n.
func padLen(n int64) int { return int(-n & 7) }

func (w *Writer) flushIfFull() error {
	if len(w.buf) < cap(w.buf)-4*maxTokenLen-2*MaxTargetLen {
		return nil
	}
	return w.flush()
}

// bufferTaker is a destination that takes a full output buffer instead of
// copying it, and returns an empty one of the same capacity.
type bufferTaker interface {
	take(full []byte) (empty []byte)
}

func (w *Writer) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	if bt, ok := w.w.(bufferTaker); ok {
		w.buf = bt.take(w.buf)
		return nil
	}
	_, err := w.w.Write(w.buf)
	w.buf = w.buf[:0]
	if err != nil {
		return w.fail(err)
	}
	return nil
}
