package meshsource

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/substitutes/publish"
)

// ServeStreams registers the handlers of the "nar" and "log" peer streams on
// m: a member asking for a NAR gets it only if src's local store holds the
// item (OpenLocalNAR), and a build log only from src's own log directory, so
// that a request never travels on to a third node. logger receives failed
// transfers; nil discards.
func ServeStreams(m StreamMesh, src *Source, logger *slog.Logger) error {
	if m == nil || src == nil {
		return fmt.Errorf("serve peer streams: %w: mesh and source are required", ErrConfig)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	sv := &streamServer{src: src, log: logger, idle: DefaultIdleTimeout}
	if err := m.HandleStream(NARStream, sv.handler(NARStream, sv.openNAR)); err != nil {
		return fmt.Errorf("serve NARs to peers: %w", err)
	}
	if err := m.HandleStream(LogStream, sv.serveLog); err != nil {
		return fmt.Errorf("serve build logs to peers: %w", err)
	}
	return nil
}

// streamServer answers peer requests from a Source's local items.
type streamServer struct {
	src  *Source
	log  *slog.Logger
	idle time.Duration
}

// handler serves one request on a stream: decode it, open what it names
// with open, answer the status and stream the content.
func (sv *streamServer) handler(name string, open func(store.Path) (io.ReadCloser, error)) func(context.Context, string, io.ReadWriteCloser) {
	return func(_ context.Context, peer string, s io.ReadWriteCloser) {
		if d, ok := s.(readDeadline); ok {
			d.SetReadDeadline(time.Now().Add(sv.idle))
		}
		p, err := decodeRequest(s, sv.src.dir)
		if err != nil {
			sv.log.Debug("bad peer stream request", "stream", name, "peer", peer, "err", err)
			sv.status(s, statusError, err.Error())
			return
		}
		rc, err := open(p)
		if err != nil {
			status := statusError
			if errors.Is(err, publish.ErrNotFound) {
				status = statusNotHeld
			}
			sv.status(s, status, err.Error())
			return
		}
		defer rc.Close()
		if err := sv.send(s, rc); err != nil {
			sv.log.Debug("peer stream transfer failed", "stream", name, "peer", peer, "path", p, "err", err)
			// Reset, not close: the peer must not take a cut stream for
			// the whole item.
			reset(s)
		}
	}
}

// status writes a response status within the idle timeout.
func (sv *streamServer) status(s io.Writer, status byte, msg string) {
	if d, ok := s.(writeDeadline); ok {
		d.SetWriteDeadline(time.Now().Add(sv.idle))
	}
	writeStatus(s, status, msg)
}

// send writes statusOK and then the content, each write within the idle
// timeout of the last.
func (sv *streamServer) send(s io.Writer, rc io.Reader) error {
	w := &idleWriter{w: s, idle: sv.idle}
	if err := writeStatus(w, statusOK, ""); err != nil {
		return err
	}
	_, err := io.Copy(w, rc)
	return err
}

func (sv *streamServer) openNAR(p store.Path) (io.ReadCloser, error) {
	return sv.src.OpenLocalNAR(p)
}

// serveLog answers one request of the log stream from the node's own log
// directory: version 1 the whole log as it is, version 2 from an offset, in
// frames, followed while it is written if asked, with a keep-alive frame
// every Heartbeat of silence.
func (sv *streamServer) serveLog(ctx context.Context, peer string, s io.ReadWriteCloser) {
	if d, ok := s.(readDeadline); ok {
		d.SetReadDeadline(time.Now().Add(sv.idle))
	}
	req, err := decodeLogRequest(s, sv.src.dir)
	if err == nil && !strings.HasSuffix(string(req.drv), ".drv") {
		err = fmt.Errorf("log of %s: not a derivation", req.drv)
	}
	if err != nil {
		sv.log.Debug("bad peer stream request", "stream", LogStream, "peer", peer, "err", err)
		sv.status(s, statusError, err.Error())
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends a follower's wait
	rc, start, err := sv.src.openLocalLog(ctx, req.drv.Base(), req.offset, req.follow && req.version == logVersion)
	if err != nil {
		status := statusError
		if errors.Is(err, publish.ErrNotFound) {
			status = statusNotHeld
		}
		sv.status(s, status, err.Error())
		return
	}
	defer rc.Close()
	if req.version == wireVersion {
		err = sv.send(s, rc)
	} else {
		err = sv.sendFrames(ctx, cancel, s, start, rc)
	}
	if err != nil {
		sv.log.Debug("peer stream transfer failed", "stream", LogStream, "peer", peer, "path", req.drv, "err", err)
		reset(s)
	}
}

// sendFrames writes statusOK, start and then what rc reads in frames, with
// a keep-alive frame after each Heartbeat without data, until rc ends. rc
// reads under ctx, which stop ends: then its reader stops, and sendFrames
// waits for it.
func (sv *streamServer) sendFrames(ctx context.Context, stop func(), s io.Writer, start int64, rc io.Reader) error {
	w := &idleWriter{w: s, idle: sv.idle}
	var hdr [9]byte
	binary.BigEndian.PutUint64(hdr[1:], uint64(start)) // hdr[0] is statusOK
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	chunks := make(chan []byte)
	readErr := make(chan error, 1)
	done := make(chan struct{})
	defer func() { stop(); <-done }()
	go func() { // ends when rc does: at its end, or when ctx ends
		defer close(done)
		defer close(chunks)
		for {
			buf := make([]byte, 32<<10)
			n, err := rc.Read(buf)
			if n > 0 {
				select {
				case chunks <- buf[:n]:
				case <-ctx.Done():
					readErr <- ctx.Err()
					return
				}
			}
			if err != nil {
				readErr <- err
				return
			}
		}
	}()
	beat := time.NewTicker(Heartbeat)
	defer beat.Stop()
	for {
		select {
		case b, ok := <-chunks:
			if !ok {
				if err := <-readErr; !errors.Is(err, io.EOF) {
					return err
				}
				return nil
			}
			if err := writeFrame(w, b); err != nil {
				return err
			}
			beat.Reset(Heartbeat)
		case <-beat.C:
			if err := writeFrame(w, nil); err != nil {
				return err
			}
		}
	}
}

// idleWriter renews the write deadline of a stream before every write.
type idleWriter struct {
	w    io.Writer
	idle time.Duration
}

func (w *idleWriter) Write(p []byte) (int, error) {
	if d, ok := w.w.(writeDeadline); ok {
		d.SetWriteDeadline(time.Now().Add(w.idle))
	}
	return w.w.Write(p)
}
