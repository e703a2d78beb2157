package meshsource

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	peermesh "github.com/tbfg/tbfg-node/mesh"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/substitutes/publish"
)

// Names of the peer streams ServeStreams registers and StreamRemote opens.
const (
	NARStream = "nar"
	LogStream = "log"
)

// DefaultIdleTimeout is how long either end of a peer stream waits for the
// other to make progress (send the request, the status, the next bytes, or
// take them) before it gives up.
const DefaultIdleTimeout = 30 * time.Second

// Errors of the peer streams, wrapped with the peer and store path concerned.
// StreamMesh is what the peer streams need of the mesh: *mesh.Mesh
// satisfies it.
type StreamMesh interface {
	// HandleStream registers h for the streams called name.
	HandleStream(name string, h peermesh.StreamHandler) error
	// OpenStream opens the stream called name to the member peer.
	OpenStream(ctx context.Context, peer, name string) (io.ReadWriteCloser, error)
}

// LogRemote opens the build log of a derivation on another member.
// Source.Log and Source.BuildLog use it when the Source's Remote implements
// it and the log is not in the node's own log directory.
type LogRemote interface {
	// OpenLog returns the (uncompressed) build log of drv as peer has it,
	// from byte offset (negative: from the end of what is written), and
	// the offset of its first byte. With follow, the reader goes on while
	// the peer's log is being written, and ends when it is complete.
	OpenLog(ctx context.Context, peer string, drv store.Path, offset int64, follow bool) (io.ReadCloser, int64, error)
}

// Heartbeat is how often a member following a silent log for another sends
// it a keep-alive, so that the reader's idle timeout does not end a build
// that simply prints nothing for a while. A follower's idle timeout is at
// least three heartbeats.
const Heartbeat = 5 * time.Second

// StreamRemote is the Remote (and LogRemote) over the mesh's peer streams:
// it asks a holder for a NAR on the "nar" stream and for a build log on the
// "log" stream, which ServeStreams answers. What it returns is not checked
// here: the substitute server and Fetch verify NARs against the signed
// narinfo.
type StreamRemote struct {
	// Mesh opens the streams.
	Mesh StreamMesh
	// Dir is the store directory every requested path must be in.
	Dir store.Dir
	// IdleTimeout bounds each wait for the peer; 0 means DefaultIdleTimeout.
	// It applies when the stream supports deadlines, as mesh streams do.
	IdleTimeout time.Duration
}

var (
	_ Remote    = (*StreamRemote)(nil)
	_ LogRemote = (*StreamRemote)(nil)
)

// OpenNAR implements Remote: the NAR of p as peer's local store holds it. A
// peer that does not hold p answers with an error wrapping
// publish.ErrNotFound. Ending ctx aborts the transfer; closing the result
// before its end resets the stream.
func (r *StreamRemote) OpenNAR(ctx context.Context, peer string, p store.Path) (io.ReadCloser, error) {
	req, err := encodeRequest(p)
	if err != nil {
		return nil, fmt.Errorf("%s of %s from %s: %w", NARStream, p, peer, err)
	}
	s, err := r.open(ctx, peer, NARStream, p, req, r.idle())
	if err != nil {
		return nil, err
	}
	return s, nil
}

// OpenLog implements LogRemote: the build log of drv from peer's log
// directory, decompressed, live while the peer's build runs; an error
// wrapping publish.ErrNotFound if peer has none.
func (r *StreamRemote) OpenLog(ctx context.Context, peer string, drv store.Path, offset int64, follow bool) (io.ReadCloser, int64, error) {
	what := fmt.Sprintf("%s of %s from %s", LogStream, drv, peer)
	req, err := encodeLogRequest(drv, offset, follow)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", what, err)
	}
	idle := r.idle()
	if follow {
		idle = max(idle, 3*Heartbeat)
	}
	s, err := r.open(ctx, peer, LogStream, drv, req, idle)
	if err != nil {
		return nil, 0, err
	}
	var start [8]byte
	if _, err := io.ReadFull(s, start[:]); err != nil {
		s.abort()
		return nil, 0, fmt.Errorf("%s: log offset: %w", what, noEOF(err))
	}
	return &framedStream{Reader: &frameReader{r: s}, s: s}, int64(binary.BigEndian.Uint64(start[:])), nil
}

// framedStream reads a version 2 response's frames from a client stream.
type framedStream struct {
	io.Reader
	s *clientStream
}

func (f *framedStream) Close() error { return f.s.Close() }

// open sends the request req for p on the stream called name and reads the
// status; on statusOK the rest of the stream is the result.
func (r *StreamRemote) open(ctx context.Context, peer, name string, p store.Path, req []byte, idle time.Duration) (*clientStream, error) {
	what := fmt.Sprintf("%s of %s from %s", name, p, peer)
	if r.Mesh == nil {
		return nil, fmt.Errorf("%s: %w", what, ErrNoRemote)
	}
	if _, err := r.Dir.ParsePath(string(p)); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	rw, err := r.Mesh.OpenStream(ctx, peer, name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	s := newClientStream(ctx, rw, idle)
	if err := s.request(req); err != nil {
		s.abort()
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	status, msg, err := readStatus(s)
	switch {
	case err != nil:
		s.abort()
		return nil, fmt.Errorf("%s: %w", what, err)
	case status == statusNotHeld:
		s.Close()
		return nil, fmt.Errorf("%s: %q: %w", what, msg, publish.ErrNotFound)
	case status != statusOK:
		s.Close()
		return nil, fmt.Errorf("%s: %q: %w", what, msg, ErrPeerFailed)
	}
	return s, nil
}

func (r *StreamRemote) idle() time.Duration {
	if r.IdleTimeout > 0 {
		return r.IdleTimeout
	}
	return DefaultIdleTimeout
}

// Optional methods of a stream; mesh streams have them all.
type (
	writeCloser  interface{ CloseWrite() error }
	resetter     interface{ Reset() error }
	readDeadline interface {
		SetReadDeadline(time.Time) error
	}
	writeDeadline interface {
		SetWriteDeadline(time.Time) error
	}
)

// reset aborts s so that the peer sees an error rather than a clean end, or
// closes it if it cannot be reset.
func reset(s io.Closer) {
	if rs, ok := s.(resetter); ok {
		rs.Reset()
		return
	}
	s.Close()
}

// clientStream is an opened request stream: reads renew the idle deadline,
// Close resets the stream unless the response was read to its end, and
// ending the opener's ctx resets it.
type clientStream struct {
	rw   io.ReadWriteCloser
	idle time.Duration
	stop func() bool

	mu   sync.Mutex
	eof  bool
	done bool
}

func newClientStream(ctx context.Context, rw io.ReadWriteCloser, idle time.Duration) *clientStream {
	s := &clientStream{rw: rw, idle: idle}
	s.stop = context.AfterFunc(ctx, func() { reset(rw) })
	return s
}

// request writes the request frame and ends this side's writes.
func (s *clientStream) request(req []byte) error {
	if d, ok := s.rw.(writeDeadline); ok {
		d.SetWriteDeadline(time.Now().Add(s.idle))
	}
	if _, err := s.rw.Write(req); err != nil {
		return fmt.Errorf("send request: %w", s.explain(err))
	}
	if wc, ok := s.rw.(writeCloser); ok {
		if err := wc.CloseWrite(); err != nil {
			return fmt.Errorf("end request: %w", err)
		}
	}
	return nil
}

// Read implements io.Reader.
func (s *clientStream) Read(p []byte) (int, error) {
	if d, ok := s.rw.(readDeadline); ok {
		d.SetReadDeadline(time.Now().Add(s.idle))
	}
	n, err := s.rw.Read(p)
	if err == io.EOF {
		s.mu.Lock()
		s.eof = true
		s.mu.Unlock()
	}
	if err != nil && err != io.EOF {
		err = s.explain(err)
	}
	return n, err
}

// explain marks an expired deadline as ErrPeerSilent.
func (s *clientStream) explain(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%w (%v): %w", ErrPeerSilent, s.idle, err)
	}
	return err
}

// Close implements io.Closer: a stream read to its end is closed, any other
// is reset so that the peer stops sending.
func (s *clientStream) Close() error {
	s.mu.Lock()
	done, eof := s.done, s.eof
	s.done = true
	s.mu.Unlock()
	if done {
		return nil
	}
	s.stop()
	if !eof {
		reset(s.rw)
		return nil
	}
	return s.rw.Close()
}

// abort resets the stream after a failed exchange.
func (s *clientStream) abort() {
	s.mu.Lock()
	s.done = true
	s.mu.Unlock()
	s.stop()
	reset(s.rw)
}
