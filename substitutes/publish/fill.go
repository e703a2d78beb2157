package publish

import (
	"context"
	"errors"
	"io"

	"github.com/tbfg/tbfg-node/substitutes/narcache"
	"github.com/tbfg/tbfg-node/substitutes/narinfo"
)

// job asks a worker to put every variant of an item's NAR into the cache.
type job struct{ ni *narinfo.Narinfo }

// enqueue queues a job for ni unless one is queued or running. When the
// queue is full the job is dropped; a later narinfo request queues it again.
func (s *Server) enqueue(ni *narinfo.Narinfo) {
	base := ni.StorePath.Base()
	s.mu.Lock()
	if s.pending[base] {
		s.mu.Unlock()
		return
	}
	s.pending[base] = true
	s.mu.Unlock()
	select {
	case s.jobs <- job{ni}:
	default:
		s.done(base)
		s.log.Debug("substitute server: compression queue full", "path", ni.StorePath)
	}
}

func (s *Server) done(base string) {
	s.mu.Lock()
	delete(s.pending, base)
	s.mu.Unlock()
}

// work runs jobs until ctx ends.
func (s *Server) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-s.jobs:
			s.fill(ctx, j.ni)
			s.done(j.ni.StorePath.Base())
		}
	}
}

// fill reads the NAR of ni from the Source once and caches every variant the
// cache lacks.
func (s *Server) fill(ctx context.Context, ni *narinfo.Narinfo) {
	base := ni.StorePath.Base()
	var comps []string
	for _, comp := range append([]string{CompressionNone}, s.cfg.Compressions...) {
		if !s.cfg.Cache.Contains(narcache.Key(comp, base)) {
			comps = append(comps, comp)
		}
	}
	if len(comps) == 0 {
		return
	}
	rc, err := s.cfg.Source.OpenNAR(ctx, ni.StorePath)
	if err != nil {
		s.log.Warn("substitute server: cannot read NAR to compress", "path", ni.StorePath, "err", err)
		return
	}
	defer rc.Close()
	if err := s.pump(ctx, ni, rc, comps, nil); err != nil {
		level := s.log.Warn
		switch {
		case errors.Is(err, ErrNARMismatch):
			level = s.log.Error
		case errors.Is(err, context.Canceled):
			level = s.log.Debug
		}
		level("substitute server: NAR not cached", "path", ni.StorePath, "err", err)
		return
	}
	s.log.Debug("substitute server: NAR cached", "path", ni.StorePath, "compressions", comps)
}

// sink is one variant of a NAR on its way into the cache and maybe to a
// client.
type sink struct {
	key string
	tee *tee
	enc io.WriteCloser
}

// newSink starts the cache entry of the variant comp of base. If the cache
// refuses it, the variant still reaches client.
func (s *Server) newSink(comp, base string, client io.Writer) (*sink, error) {
	key := narcache.Key(comp, base)
	t := &tee{client: client}
	if entry, err := s.cfg.Cache.Create(key); err == nil {
		t.entry = entry
	} else {
		s.log.Warn("substitute server: cannot cache NAR", "key", key, "err", err)
	}
	enc, err := newEncoder(comp, t)
	if err != nil {
		t.abort()
		return nil, err
	}
	return &sink{key: key, tee: t, enc: enc}, nil
}

// finish ends the compressed stream and commits the cache entry.
func (sk *sink) finish(s *Server) error {
	if err := sk.enc.Close(); err != nil {
		return err
	}
	entry := sk.tee.entry
	if entry == nil {
		return nil
	}
	sk.tee.entry = nil
	if err := entry.Commit(); err != nil {
		s.log.Warn("substitute server: cannot cache NAR", "key", sk.key, "err", err)
		return nil
	}
	s.setSize(sk.key, sk.tee.n)
	return nil
}

// abort drops the cache entry unless finish committed it.
func (sk *sink) abort() { sk.tee.abort() }

// tee writes to a client, whose errors end the stream, and to a cache entry,
// whose errors only drop the entry.
type tee struct {
	client io.Writer
	entry  *narcache.Writer
	n      int64
}

func (t *tee) Write(p []byte) (int, error) {
	if t.client != nil {
		if _, err := t.client.Write(p); err != nil {
			return 0, err
		}
	}
	if t.entry != nil {
		if _, err := t.entry.Write(p); err != nil {
			t.abort()
		}
	}
	t.n += int64(len(p))
	return len(p), nil
}

func (t *tee) abort() {
	if t.entry != nil {
		_ = t.entry.Abort()
		t.entry = nil
	}
}
