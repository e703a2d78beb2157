package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tbfg/tbfg-node/scheduler"
)

// Log bounds: what a page embeds, what a tail shows, how much one event
// carries.
const (
	pageLogBytes = 1 << 20 // the build page embeds at most the last 1 MiB
	tailBytes    = 4096    // a tail is read from the last 4 KiB
	tailLines    = 6
	logChunk     = 16 << 10
)

// apiLog serves a build log as plain text; ?follow=1 streams it until the
// build ends.
func (s *Server) apiLog(w http.ResponseWriter, r *http.Request) {
	req, err := s.prepare(w, r, []string{"follow"})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	follow, err := req.p.flag("follow")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if follow {
		select {
		case s.follows <- struct{}{}:
			defer func() { <-s.follows }()
		default:
			s.writeError(w, r, fmt.Errorf("follow the log of build %d: %w", req.id, ErrTooManyClients))
			return
		}
	}
	if !s.knownBuild(req.id) {
		s.writeError(w, r, fmt.Errorf("build %d: %w", req.id, ErrNotFound))
		return
	}
	rc, _, err := s.cfg.Backend.OpenLog(r.Context(), req.id, LogOptions{Follow: follow})
	if err != nil {
		s.writeError(w, r, fmt.Errorf("log of build %d: %w", req.id, err))
		return
	}
	defer rc.Close()
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	rw := newDeadlineWriter(w, s.cfg.WriteTimeout)
	buf := make([]byte, logChunk)
	for {
		n, err := rc.Read(buf)
		if n > 0 {
			if werr := rw.write(buf[:n]); werr != nil {
				return // the client went away or stopped reading
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				s.log.Debug("read build log", "build", req.id, "err", err)
			}
			return
		}
	}
}

// knownBuild reports whether the replica knows build id.
func (s *Server) knownBuild(id uint64) bool {
	ok := false
	s.cfg.Replica.Read(func(st *scheduler.State) { _, ok = st.Build(scheduler.BuildID(id)) })
	return ok
}

// deadlineWriter writes and flushes, each write bounded in time so that a
// client that stops reading cannot hold the handler.
type deadlineWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

func newDeadlineWriter(w http.ResponseWriter, timeout time.Duration) *deadlineWriter {
	return &deadlineWriter{w: w, rc: http.NewResponseController(w), timeout: timeout}
}

func (d *deadlineWriter) write(b []byte) error {
	// Not every ResponseWriter supports deadlines (httptest's does not);
	// there the write is simply unbounded.
	_ = d.rc.SetWriteDeadline(time.Now().Add(d.timeout))
	if _, err := d.w.Write(b); err != nil {
		return err
	}
	if err := d.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

// logText is the end of a log as a page shows it.
type logText struct {
	Text string
	Cut  bool  // the log starts earlier than Text
	End  int64 // offset in the whole log after the bytes read: where to follow from
}

// readLogTail reads at most limit bytes from the end of a log, ctx bounding
// the read.
func (s *Server) readLogTail(ctx context.Context, id uint64, limit int64) (logText, error) {
	// One more byte than shown tells whether text was left out.
	rc, start, err := s.cfg.Backend.OpenLog(ctx, id, LogOptions{Offset: -(limit + 1)})
	if err != nil {
		return logText{}, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return logText{}, err
	}
	t := logText{End: start + int64(len(b)), Cut: start > 0 || int64(len(b)) > limit}
	if int64(len(b)) > limit {
		b = b[int64(len(b))-limit:]
	}
	if t.Cut { // start at a line, as the cut may fall inside one
		if i := bytes.IndexByte(b, '\n'); i >= 0 && i < len(b)-1 {
			b = b[i+1:]
		}
	}
	t.Text = strings.ToValidUTF8(string(b), "\uFFFD")
	return t, nil
}

// lastLines returns the last n lines of text.
func lastLines(text string, n int) []string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return nil
	}
	return lines[max(0, len(lines)-n):]
}

// utf8Cut returns how many bytes of b end on a whole UTF-8 character, so a
// character split between two reads is sent whole with the next one.
func utf8Cut(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if utf8.FullRune(b[i:]) {
				return len(b)
			}
			return i
		}
	}
	return len(b)
}
