package adminapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// maxCursor bounds ?cursor= of GET /v1/changes.
const maxCursor = 64

// LogErrorTrailer is the trailer of a log answer that ended before the end
// of the log, with the reason; a log read to its end has none.
const LogErrorTrailer = "X-Tbfg-Log-Error"

// changes answers the builds that changed after ?cursor=, waiting up to
// ?wait= for one.
func (a *Server) changes(w http.ResponseWriter, r *http.Request, at ReadAt) {
	cursor := r.URL.Query().Get("cursor")
	if len(cursor) > maxCursor {
		writeError(w, fmt.Errorf("%w: cursor of %d bytes: pass back the cursor of an earlier answer", ErrBadRequest, len(cursor)))
		return
	}
	ctx, cancel := a.bounded(r.Context(), at.Wait)
	defer cancel()
	ch, err := a.backend.Changes(ctx, cursor)
	if err != nil {
		writeError(w, err)
		return
	}
	if ch.Builds == nil {
		ch.Builds = []uint64{}
	}
	writeJSON(w, http.StatusOK, ch)
}

// buildLog streams the log of build {id}, flushing as it goes; with
// ?follow=1 until the build ends. A log cut short ends with the
// LogErrorTrailer.
func (a *Server) buildLog(w http.ResponseWriter, r *http.Request, _ ReadAt) {
	id, err := parseBuildID(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	follow, err := parseBool("follow", r.URL.Query().Get("follow"))
	if err != nil {
		writeError(w, err)
		return
	}
	ctx, cancel := a.bounded(r.Context(), maxFollow)
	defer cancel()
	rc, err := a.backend.Log(ctx, id, follow)
	if err != nil {
		writeError(w, err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Trailer", LogErrorTrailer)
	w.WriteHeader(http.StatusOK)
	if err := copyFlushing(w, rc); err != nil {
		w.Header().Set(LogErrorTrailer, err.Error())
	}
}

// maxFollow bounds how long one answer follows a log.
const maxFollow = 24 * time.Hour

// copyFlushing copies rc to w, flushing after every read so that a
// followed log shows as it grows. It returns rc's error other than io.EOF.
func copyFlushing(w http.ResponseWriter, rc io.Reader) error {
	fl := http.NewResponseController(w)
	buf := make([]byte, 32<<10)
	for {
		n, err := rc.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return nil // the client went away
			}
			_ = fl.Flush()
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// action wraps POST /v1/cancel and /v1/retry: it reads the build ids and
// calls do.
func (a *Server) action(do func(ctx context.Context, ids []uint64) (ActionResult, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req ActionRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxActionBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeError(w, fmt.Errorf("%w: body: %w", ErrBadRequest, err))
			return
		}
		if err := checkIDs(req.Builds); err != nil {
			writeError(w, err)
			return
		}
		res, err := do(r.Context(), req.Builds)
		if err != nil {
			a.log.Warn("build action failed", "path", r.URL.Path, "err", err)
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	}
}

// checkIDs rejects an empty list of build ids, or one with id 0.
func checkIDs(ids []uint64) error {
	if len(ids) == 0 {
		return fmt.Errorf("%w: no build ids given", ErrBadRequest)
	}
	for _, id := range ids {
		if id == 0 {
			return fmt.Errorf("%w: build id 0: build ids start at 1", ErrBadRequest)
		}
	}
	return nil
}

// parseBuildID reads a build id of a path.
func parseBuildID(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("%w: build id %q: want a build number", ErrBadRequest, s)
	}
	return id, nil
}

// parseBool reads a boolean parameter: "", 0 or false, 1 or true.
func parseBool(name, v string) (bool, error) {
	switch v {
	case "", "0", "false":
		return false, nil
	case "1", "true":
		return true, nil
	}
	return false, fmt.Errorf("%w: %s %q: want 1 or 0", ErrBadRequest, name, v)
}
