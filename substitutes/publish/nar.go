package publish

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/substitutes/narcache"
	"github.com/tbfg/tbfg-node/substitutes/narinfo"
)

// serveNAR answers /nar/[<compression>/]<base>: from the cache when it holds
// the variant, else streamed from the Source through the verifier.
func (s *Server) serveNAR(w http.ResponseWriter, r *http.Request, rt route) {
	if rt.comp != CompressionNone && !s.offers(rt.comp) {
		s.refuse(w, notFoundRoute("compression %q not offered", rt.comp))
		return
	}
	ni, err := s.lookup(r.Context(), rt.base[:store.HashLen])
	if err == nil && ni.StorePath != s.storePath(rt.base) {
		err = fmt.Errorf("NAR %s: %w", rt.base, ErrNotFound)
	}
	if err != nil {
		s.missing(w, r, "NAR", err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", typeNAR)
	h.Set("Cache-Control", s.hitCacheControl)
	key := narcache.Key(rt.comp, rt.base)
	if rc, size, err := s.cfg.Cache.Get(key); err == nil {
		defer rc.Close()
		s.setSize(key, size)
		h.Set("Content-Length", strconv.FormatInt(size, 10))
		if r.Method != http.MethodHead {
			s.countNARHit()
			// rc is a file: io.Copy sends it with sendfile.
			_, _ = io.Copy(w, rc)
		}
		return
	}
	if rt.comp == CompressionNone {
		h.Set("Content-Length", strconv.FormatUint(ni.NarSize, 10))
	}
	if r.Method == http.MethodHead {
		return
	}
	if s.cfg.Observer != nil {
		s.cfg.Observer.NARCacheMiss()
	}
	s.streamNAR(w, r, ni, rt.comp)
}

// countNARHit tells the Observer of a NAR sent from the cache.
func (s *Server) countNARHit() {
	if s.cfg.Observer != nil {
		s.cfg.Observer.NARCacheHit()
	}
}

func (s *Server) offers(comp string) bool {
	for _, c := range s.cfg.Compressions {
		if c == comp {
			return true
		}
	}
	return false
}

// streamNAR sends the NAR from the Source, compressed with comp, storing it
// in the cache as it goes. A NAR that fails verification is cut: the handler
// aborts, so the client sees a broken transfer.
func (s *Server) streamNAR(w http.ResponseWriter, r *http.Request, ni *narinfo.Narinfo, comp string) {
	ctx := r.Context()
	if comp != CompressionNone {
		select {
		case s.streams <- struct{}{}:
			defer func() { <-s.streams }()
		case <-ctx.Done():
			return
		}
	}
	rc, err := s.cfg.Source.OpenNAR(ctx, ni.StorePath)
	if err != nil {
		w.Header().Del("Content-Length")
		s.missing(w, r, "NAR", err)
		return
	}
	defer rc.Close()
	err = s.pump(ctx, ni, rc, []string{comp}, w)
	if err == nil {
		return
	}
	if errors.Is(err, ErrNARMismatch) {
		s.log.Error("substitute server: NAR from source does not match its narinfo; transfer cut",
			"path", ni.StorePath, "err", err)
	} else {
		s.log.Debug("substitute server: NAR transfer failed", "path", ni.StorePath, "err", err)
	}
	// Without the abort, net/http would end a chunked (compressed) body
	// cleanly and the client could take a truncated stream for a whole one.
	panic(http.ErrAbortHandler)
}

// pump reads a NAR from rc, checks it against ni, and writes it compressed
// with each of comps into a cache entry; the first variant also goes to
// client when that is not nil. Cache entries are committed only when the
// whole NAR has been checked; a cache failure does not stop the client's
// stream.
func (s *Server) pump(ctx context.Context, ni *narinfo.Narinfo, rc io.Reader, comps []string, client io.Writer) error {
	v, err := newVerifier(rc, ni.NarHash, ni.NarSize)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrNARMismatch, ni.StorePath, err)
	}
	sinks := make([]*sink, 0, len(comps))
	defer func() {
		for _, sk := range sinks {
			sk.abort()
		}
	}()
	writers := make([]io.Writer, 0, len(comps))
	for i, comp := range comps {
		var out io.Writer
		if i == 0 {
			out = client
		}
		sk, err := s.newSink(comp, ni.StorePath.Base(), out)
		if err != nil {
			return err
		}
		sinks = append(sinks, sk)
		writers = append(writers, sk.enc)
	}
	if _, err := io.Copy(io.MultiWriter(writers...), ctxReader{ctx, v}); err != nil {
		return err
	}
	for _, sk := range sinks {
		if err := sk.finish(s); err != nil {
			return err
		}
	}
	return nil
}

// ctxReader stops reading once ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
