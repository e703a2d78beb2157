package meshsource

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/tbfg/tbfg-node/store"
)

// The peer stream protocol (see DESIGN.md, "Peer streams"). A request is
// one frame: a version byte, a 2-byte big-endian length and that many bytes
// of store path; a version 2 request (log stream only) then carries an
// 8-byte big-endian signed offset and a flags byte. A response starts with a
// status byte; statusNotHeld and statusError are followed by a 2-byte length
// and a message, statusOK by the raw bytes of the NAR or log until the end
// of the stream (version 1), or by the 8-byte offset of the log's first
// byte and then frames of a 4-byte big-endian length and that many bytes, a
// length of 0 being a keep-alive (version 2).
const (
	wireVersion = 1
	// logVersion is the version of log requests with an offset and flags.
	logVersion = 2
	// flagFollow asks for the log to be followed while it is written.
	flagFollow byte = 1
	// maxFrame bounds one frame of a version 2 response.
	maxFrame = 64 << 10
	// maxRequestPath bounds a requested path: a store path is the store
	// directory, 32 hash characters, a dash and at most 211 name characters.
	maxRequestPath = 1024
	// maxStatusMessage bounds the message of a non-ok response.
	maxStatusMessage = 1024
)

// Response statuses.
const (
	statusOK      byte = 0
	statusNotHeld byte = 1
	statusError   byte = 2
)

// encodeRequest is the request frame naming p.
func encodeRequest(p store.Path) ([]byte, error) {
	if len(p) > maxRequestPath {
		return nil, fmt.Errorf("request %s: path longer than %d bytes", p, maxRequestPath)
	}
	b := make([]byte, 3, 3+len(p))
	b[0] = wireVersion
	binary.BigEndian.PutUint16(b[1:], uint16(len(p)))
	return append(b, p...), nil
}

// logRequest is a decoded request of the log stream.
type logRequest struct {
	drv     store.Path
	version byte
	offset  int64 // first byte; negative counts from the end
	follow  bool
}

// encodeLogRequest is the version 2 request frame for the log of drv.
func encodeLogRequest(drv store.Path, offset int64, follow bool) ([]byte, error) {
	b, err := encodeRequest(drv)
	if err != nil {
		return nil, err
	}
	b[0] = logVersion
	b = binary.BigEndian.AppendUint64(b, uint64(offset))
	flags := byte(0)
	if follow {
		flags |= flagFollow
	}
	return append(b, flags), nil
}

// decodeLogRequest reads a version 1 or 2 request frame for a log. It reads
// no byte past the frame.
func decodeLogRequest(r io.Reader, dir store.Dir) (logRequest, error) {
	var req logRequest
	var err error
	if req.version, req.drv, err = decodeFrame(r, dir, wireVersion, logVersion); err != nil || req.version == wireVersion {
		return req, err
	}
	var tail [9]byte
	if _, err := io.ReadFull(r, tail[:]); err != nil {
		return req, fmt.Errorf("request offset and flags: %w", noEOF(err))
	}
	req.offset = int64(binary.BigEndian.Uint64(tail[:8]))
	if tail[8]&^flagFollow != 0 {
		return req, fmt.Errorf("request: unknown flags %#x", tail[8]&^flagFollow)
	}
	req.follow = tail[8]&flagFollow != 0
	return req, nil
}

// decodeRequest reads one version 1 request frame from r and checks that it
// names a store path of dir. It reads no byte past the frame.
func decodeRequest(r io.Reader, dir store.Dir) (store.Path, error) {
	_, p, err := decodeFrame(r, dir, wireVersion, wireVersion)
	return p, err
}

// decodeFrame reads the version, length and path of a request frame whose
// version is from lo to hi.
func decodeFrame(r io.Reader, dir store.Dir, lo, hi byte) (byte, store.Path, error) {
	var hdr [3]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, "", fmt.Errorf("request header: %w", noEOF(err))
	}
	switch {
	case lo == hi && hdr[0] != lo:
		return 0, "", fmt.Errorf("request: protocol version %d, want %d", hdr[0], lo)
	case hdr[0] < lo || hdr[0] > hi:
		return 0, "", fmt.Errorf("request: protocol version %d, want %d to %d", hdr[0], lo, hi)
	}
	n := int(binary.BigEndian.Uint16(hdr[1:]))
	if n > maxRequestPath {
		return 0, "", fmt.Errorf("request: path of %d bytes, more than the %d allowed", n, maxRequestPath)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, "", fmt.Errorf("request path (%d bytes): %w", n, noEOF(err))
	}
	p, err := dir.ParsePath(string(buf))
	if err != nil {
		return 0, "", fmt.Errorf("request: %w", err)
	}
	return hdr[0], p, nil
}

// writeFrame writes one frame of a version 2 response; an empty b is a
// keep-alive.
func writeFrame(w io.Writer, b []byte) error {
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(b)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(b)
	return err
}

// frameReader reads the content of a version 2 response's frames. A clean
// end of stream between frames is io.EOF, inside one io.ErrUnexpectedEOF.
type frameReader struct {
	r    io.Reader
	left int // bytes of the current frame not read yet
}

func (f *frameReader) Read(p []byte) (int, error) {
	for f.left == 0 {
		var hdr [4]byte
		if _, err := io.ReadFull(f.r, hdr[:]); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return 0, fmt.Errorf("frame header: %w", err)
			}
			return 0, err
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n > maxFrame {
			return 0, fmt.Errorf("frame of %d bytes, more than %d: %w", n, maxFrame, ErrBadResponse)
		}
		f.left = int(n)
		if len(p) == 0 {
			return 0, nil
		}
	}
	n, err := f.r.Read(p[:min(len(p), f.left)])
	f.left -= n
	if errors.Is(err, io.EOF) {
		if f.left > 0 {
			return n, io.ErrUnexpectedEOF
		}
		err = nil // the next Read finds the end between frames
	}
	return n, err
}

// noEOF turns a clean end of stream inside a frame into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// writeStatus writes a response status; msg is cut to maxStatusMessage
// bytes of valid UTF-8 for the non-ok ones.
func writeStatus(w io.Writer, status byte, msg string) error {
	if status == statusOK {
		_, err := w.Write([]byte{statusOK})
		return err
	}
	msg = truncateUTF8(msg, maxStatusMessage)
	b := make([]byte, 3, 3+len(msg))
	b[0] = status
	binary.BigEndian.PutUint16(b[1:], uint16(len(msg)))
	_, err := w.Write(append(b, msg...))
	return err
}

func truncateUTF8(s string, n int) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// readStatus reads a response status and, unless it is statusOK, its
// message.
func readStatus(r io.Reader) (byte, string, error) {
	var hdr [3]byte
	if _, err := io.ReadFull(r, hdr[:1]); err != nil {
		return 0, "", fmt.Errorf("response status: %w", noEOF(err))
	}
	switch hdr[0] {
	case statusOK:
		return statusOK, "", nil
	case statusNotHeld, statusError:
	default:
		return 0, "", fmt.Errorf("response: unknown status %d: %w", hdr[0], ErrBadResponse)
	}
	if _, err := io.ReadFull(r, hdr[1:]); err != nil {
		return 0, "", fmt.Errorf("response message length: %w", noEOF(err))
	}
	n := int(binary.BigEndian.Uint16(hdr[1:]))
	if n > maxStatusMessage {
		return 0, "", fmt.Errorf("response message of %d bytes, more than %d: %w", n, maxStatusMessage, ErrBadResponse)
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(r, msg); err != nil {
		return 0, "", fmt.Errorf("response message: %w", noEOF(err))
	}
	return hdr[0], string(msg), nil
}
