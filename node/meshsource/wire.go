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
// of store path. A response starts with a status byte; statusNotHeld and
// statusError are followed by a 2-byte length and a message, statusOK by the
// raw bytes of the NAR or log until the end of the stream.
const (
	wireVersion = 1
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

// decodeRequest reads one request frame from r and checks that it names a
// store path of dir. It reads no byte past the frame.
func decodeRequest(r io.Reader, dir store.Dir) (store.Path, error) {
	var hdr [3]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return "", fmt.Errorf("request header: %w", noEOF(err))
	}
	if hdr[0] != wireVersion {
		return "", fmt.Errorf("request: protocol version %d, want %d", hdr[0], wireVersion)
	}
	n := int(binary.BigEndian.Uint16(hdr[1:]))
	if n > maxRequestPath {
		return "", fmt.Errorf("request: path of %d bytes, more than the %d allowed", n, maxRequestPath)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return "", fmt.Errorf("request path (%d bytes): %w", n, noEOF(err))
	}
	p, err := dir.ParsePath(string(buf))
	if err != nil {
		return "", fmt.Errorf("request: %w", err)
	}
	return p, nil
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
