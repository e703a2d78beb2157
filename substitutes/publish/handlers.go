package publish

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strconv"
	"time"

	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/substitutes/narcache"
	"github.com/tbfg/tbfg-node/substitutes/narinfo"
)

// Content types of the answers, as guix publish and Nix's caches use them.
const (
	typeNarinfo   = "text/x-nix-narinfo"
	typeCacheInfo = "text/x-nix-cache-info"
	typeNAR       = "application/x-nix-archive"
	typeText      = "text/plain; charset=utf-8"
)

// serveBytes answers with a small fixed body.
func (s *Server) serveBytes(w http.ResponseWriter, r *http.Request, contentType string, body []byte) {
	s.serveBody(w, r, []string{contentType}, []string{strconv.Itoa(len(body))}, body)
}

// serveBody answers with body, whose Content-Type and Content-Length header
// values are given. The value slices may be shared between requests:
// net/http copies the header map before it writes it and never modifies a
// handler's values, so a narinfo answer allocates nothing here.
func (s *Server) serveBody(w http.ResponseWriter, r *http.Request, contentType, length []string, body []byte) {
	h := w.Header()
	h["Content-Type"] = contentType
	h["Content-Length"] = length
	h["Cache-Control"] = s.hitCache
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

func (s *Server) serveSigningKey(w http.ResponseWriter, r *http.Request) {
	if s.cfg.SigningKey == nil {
		s.refuse(w, notFoundRoute("this server has no signing key"))
		return
	}
	s.serveBytes(w, r, typeText, s.cfg.SigningKey)
}

// maxAge is a Cache-Control value for d.
func (s *Server) maxAge(d time.Duration) string {
	return "public, max-age=" + strconv.FormatInt(int64(d/time.Second), 10)
}

// missing answers 404 for an item the Source does not have, cacheable for
// NegativeTTL, or 500 for any other Source failure.
func (s *Server) missing(w http.ResponseWriter, r *http.Request, what string, err error) {
	if errors.Is(err, ErrNotFound) {
		w.Header().Set("Cache-Control", s.maxAge(s.cfg.NegativeTTL))
		http.Error(w, what+" not found", http.StatusNotFound)
		return
	}
	if errors.Is(err, context.Canceled) {
		return
	}
	s.log.Error("substitute server: source failed", "path", r.URL.Path, "err", err)
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, "internal error reading "+what, http.StatusInternalServerError)
}

// lookup returns the narinfo of the item whose hash part is hash, checked to
// describe an item of the server's store with that hash part.
func (s *Server) lookup(ctx context.Context, hash string) (*narinfo.Narinfo, error) {
	ni, err := s.cfg.Source.Narinfo(ctx, hash)
	if err != nil {
		return nil, err
	}
	if ni == nil || ni.StorePath.Dir() != s.cfg.StoreDir || ni.StorePath.HashPart() != hash {
		return nil, fmt.Errorf("source gave a narinfo for another item when asked for %s", hash)
	}
	return ni, nil
}

// serveNarinfo answers /<hash>.narinfo with the signed narinfo and URL
// blocks for this server.
func (s *Server) serveNarinfo(w http.ResponseWriter, r *http.Request, hash string) {
	ni, err := s.lookup(r.Context(), hash)
	if err != nil {
		s.missing(w, r, "narinfo", err)
		return
	}
	rd, err := s.renderNarinfo(ni)
	if err != nil {
		s.missing(w, r, "narinfo", err)
		return
	}
	s.serveBody(w, r, s.narinfoType, rd.length, rd.body)
}

// maxRendered bounds the narinfos kept printed; past it the memo restarts.
const maxRendered = 1 << 14

// rendered is a narinfo printed with every variant on offer, ready to send.
type rendered struct {
	ni     *narinfo.Narinfo // what the Source returned
	keys   []string         // cache keys of the variants listed
	body   []byte
	length []string // the Content-Length header value of body
}

// renderNarinfo prints ni with one URL block per variant on offer, and queues
// the compression of the missing ones. A narinfo whose variants are all
// cached is printed once and reused while the Source returns the same value
// and the cache still holds them.
func (s *Server) renderNarinfo(ni *narinfo.Narinfo) (*rendered, error) {
	hash := ni.StorePath.HashPart()
	s.rmu.RLock()
	r := s.rendered[hash]
	s.rmu.RUnlock()
	if r != nil && r.ni == ni && s.allCached(r.keys) {
		return r, nil
	}
	base := ni.StorePath.Base()
	keys := make([]string, 0, 1+len(s.cfg.Compressions))
	files := make([]narinfo.File, 1, 1+len(s.cfg.Compressions))
	files[0] = narinfo.File{URL: "nar/" + base, Compression: CompressionNone, FileSize: ni.NarSize}
	complete := s.cachedSize(narcache.Key(CompressionNone, base)) >= 0
	keys = append(keys, narcache.Key(CompressionNone, base))
	for _, comp := range s.cfg.Compressions {
		key := narcache.Key(comp, base)
		size := s.cachedSize(key)
		if size < 0 {
			complete = false
			continue
		}
		keys = append(keys, key)
		files = append(files, narinfo.File{URL: "nar/" + comp + "/" + base, Compression: comp, FileSize: uint64(size)})
	}
	if !complete {
		s.enqueue(ni)
	}
	body, err := printWithFiles(ni, files)
	if err != nil {
		return nil, err
	}
	r = &rendered{ni: ni, keys: keys, body: body, length: []string{strconv.Itoa(len(body))}}
	if complete {
		s.remember(hash, r)
	}
	return r, nil
}

// printWithFiles prints ni with its URL blocks replaced by files, or as it is
// when its URL blocks are signed (Guix's old layout).
func printWithFiles(ni *narinfo.Narinfo, files []narinfo.File) ([]byte, error) {
	out := *ni
	if err := out.SetFiles(files); errors.Is(err, narinfo.ErrSignedFiles) {
		return ni.Marshal()
	} else if err != nil {
		return nil, fmt.Errorf("narinfo of %s: %w", ni.StorePath, err)
	}
	return out.Marshal()
}

func (s *Server) allCached(keys []string) bool {
	for _, k := range keys {
		if !s.cfg.Cache.Contains(k) {
			return false
		}
	}
	return true
}

func (s *Server) remember(hash string, r *rendered) {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if len(s.rendered) >= maxRendered {
		clear(s.rendered)
	}
	s.rendered[hash] = r
}

// cachedSize is the size of the cache entry key, or -1 if it is not cached.
func (s *Server) cachedSize(key string) int64 {
	if !s.cfg.Cache.Contains(key) {
		s.mu.Lock()
		delete(s.sizes, key)
		s.mu.Unlock()
		return -1
	}
	s.mu.Lock()
	size, ok := s.sizes[key]
	s.mu.Unlock()
	if ok {
		return size
	}
	// Cached before this server started: learn the size once.
	rc, size, err := s.cfg.Cache.Get(key)
	if err != nil {
		return -1
	}
	_ = rc.Close()
	s.setSize(key, size)
	return size
}

func (s *Server) setSize(key string, size int64) {
	s.mu.Lock()
	if len(s.sizes) >= 4*maxRendered {
		clear(s.sizes) // entries evicted long ago; the rest are learned again
	}
	s.sizes[key] = size
	s.mu.Unlock()
}

// serveLog answers /log/<base> with the build log as text.
func (s *Server) serveLog(w http.ResponseWriter, r *http.Request, base string) {
	rc, err := s.cfg.Source.Log(r.Context(), base)
	if err != nil {
		s.missing(w, r, "log", err)
		return
	}
	defer rc.Close()
	h := w.Header()
	h.Set("Content-Type", typeText)
	h.Set("Cache-Control", s.hitCacheControl)
	if f, ok := rc.(interface{ Stat() (fs.FileInfo, error) }); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			h.Set("Content-Length", strconv.FormatInt(fi.Size(), 10))
		}
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := io.Copy(w, rc); err != nil {
		s.log.Debug("substitute server: log transfer failed", "base", base, "err", err)
	}
}

// storePath is the store path of base in the server's store.
func (s *Server) storePath(base string) store.Path {
	return store.Path(string(s.cfg.StoreDir) + "/" + base)
}
