package meshsource

import (
	"context"
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
	if err := m.HandleStream(LogStream, sv.handler(LogStream, sv.openLog)); err != nil {
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

// openLog opens the log of a derivation from the node's own log directory.
func (sv *streamServer) openLog(drv store.Path) (io.ReadCloser, error) {
	if !strings.HasSuffix(string(drv), ".drv") {
		return nil, fmt.Errorf("log of %s: not a derivation", drv)
	}
	if sv.src.cfg.LogDir == "" {
		return nil, fmt.Errorf("log of %s: no log directory here: %w", drv.Base(), publish.ErrNotFound)
	}
	return OpenLog(sv.src.cfg.LogDir, drv.Base())
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
