package publish

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/substitutes/narcache"
)

// The fast path answers the requests that dominate a substitute server's
// traffic, GET and HEAD of a narinfo whose answer is memoised (and of
// /nix-cache-info, which clients ask first on a connection), without
// net/http, whose per-request work costs several times the handler's. Every
// connection starts on the fast path; at the first request it does not
// answer alone (any other resource, a miss, anything unusual in the request)
// it hands the connection, with every byte it has not consumed, to net/http,
// which serves it from then on. Its answers are ServeHTTP's: the same
// status, header fields and body. fastparse.go reads the requests; DESIGN.md
// says why.

// fastBufSize is the read buffer of a connection on the fast path; a
// request whose header does not fit goes to net/http.
const fastBufSize = 4096

// fastWriteTimeout bounds the writing of one answer on the fast path: a
// client that sends requests but stops reading the answers would otherwise
// hold its connection's goroutine until shutdown.
const fastWriteTimeout = time.Minute

// fastListener is the net.Listener net/http serves: it yields the
// connections the fast path hands over.
type fastListener struct {
	ln      net.Listener
	s       *Server
	hs      *http.Server // for its timeouts
	handoff chan net.Conn
	done    chan struct{} // closed by Close
	once    sync.Once
	wg      sync.WaitGroup // the accept loop and every fast-path connection

	// closing is set at shutdown. A connection marks itself idle before it
	// checks closing, and shutdown sets closing before it looks for idle
	// connections: one of the two always sees the other.
	closing atomic.Bool
	mu      sync.Mutex
	conns   map[*fastConn]struct{}
}

func newFastListener(s *Server, hs *http.Server, ln net.Listener) *fastListener {
	return &fastListener{ln: ln, s: s, hs: hs, handoff: make(chan net.Conn), done: make(chan struct{}),
		conns: map[*fastConn]struct{}{}}
}

// Accept implements net.Listener for net/http.
func (l *fastListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.handoff:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener: it stops accepting. net/http calls it when
// it shuts down; connections on the fast path end with shutdown.
func (l *fastListener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		err = l.ln.Close()
	})
	return err
}

func (l *fastListener) closed() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// Addr implements net.Listener.
func (l *fastListener) Addr() net.Addr { return l.ln.Addr() }

// run accepts connections until Close and serves each on the fast path.
// Accept errors (e.g. out of file descriptors) are retried with a growing
// pause, as net/http does.
func (l *fastListener) run() {
	l.wg.Go(func() {
		var pause time.Duration
		for {
			c, err := l.ln.Accept()
			if err != nil {
				if l.closed() {
					return
				}
				select {
				case <-l.done:
					return
				case <-time.After(pause):
				}
				pause = min(max(2*pause, 5*time.Millisecond), time.Second)
				l.s.log.Warn("substitute server: accept failed", "err", err, "retry-in", pause)
				continue
			}
			pause = 0
			fc := &fastConn{l: l, c: c, buf: make([]byte, fastBufSize)}
			if !l.track(fc) {
				_ = c.Close()
				continue
			}
			l.wg.Go(fc.serve)
		}
	})
}

// track registers a fast-path connection, unless shutting down.
func (l *fastListener) track(fc *fastConn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing.Load() {
		return false
	}
	l.conns[fc] = struct{}{}
	return true
}

func (l *fastListener) untrack(fc *fastConn) {
	l.mu.Lock()
	delete(l.conns, fc)
	l.mu.Unlock()
}

// shutdown closes the idle fast-path connections and lets the others finish
// the answer they are writing, for up to timeout, then closes them too. It
// returns once every fast-path goroutine has ended.
func (l *fastListener) shutdown(timeout time.Duration) {
	_ = l.Close()
	l.closing.Store(true)
	l.mu.Lock()
	for fc := range l.conns {
		if fc.idle.Load() {
			_ = fc.c.Close()
		}
	}
	l.mu.Unlock()
	ended := make(chan struct{})
	go func() { l.wg.Wait(); close(ended) }()
	select {
	case <-ended:
		return
	case <-time.After(timeout):
	}
	l.mu.Lock()
	for fc := range l.conns {
		_ = fc.c.Close()
	}
	l.mu.Unlock()
	<-ended
}

// fastConn is one connection on the fast path.
type fastConn struct {
	l          *fastListener
	c          net.Conn
	buf        []byte
	start, end int         // unconsumed bytes are buf[start:end]
	out        []byte      // the answer being written
	deadline   time.Time   // the read deadline set last
	wdeadline  time.Time   // the write deadline set last
	idle       atomic.Bool // waiting for a request to start
}

// serve answers requests until one needs net/http, the client goes away or
// the server shuts down.
func (fc *fastConn) serve() {
	defer fc.l.untrack(fc)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for {
		req, ok := fc.next()
		switch {
		case !ok:
			_ = fc.c.Close()
			return
		case req == nil || !fc.answer(ctx, req):
			fc.handOff()
			return
		case fc.closing():
			_ = fc.c.Close()
			return
		}
	}
}

// next reads until the buffer holds a whole request header and parses it.
// It returns a nil request for net/http to answer, and false when the
// connection is to be closed: the client closed it, or it timed out, between
// requests (net/http closes those silently too). A connection that ends or
// times out within a request goes to net/http, which answers as it does.
func (fc *fastConn) next() (*fastRequest, bool) {
	for {
		if fc.start == fc.end {
			fc.start, fc.end = 0, 0
		}
		if n := headerLen(fc.buf[fc.start:fc.end]); n > 0 {
			return parseFastRequest(fc.buf[fc.start : fc.start+n]), true
		}
		if fc.end == len(fc.buf) {
			if fc.start == 0 {
				return nil, true // a long header: net/http's limits apply
			}
			fc.end = copy(fc.buf, fc.buf[fc.start:fc.end])
			fc.start = 0
		}
		if err := fc.read(); err != nil {
			return nil, fc.start < fc.end && !errors.Is(err, net.ErrClosed)
		}
	}
}

// read reads more bytes: before a request starts, within net/http's idle
// timeout, and within one, within its header timeout.
func (fc *fastConn) read() error {
	waiting := fc.start == fc.end
	timeout := fc.l.hs.ReadHeaderTimeout
	if waiting {
		timeout = fc.l.hs.IdleTimeout
		if !fc.setIdle(true) {
			return net.ErrClosed
		}
	}
	// Resetting the deadline costs a timer update; one set less than a
	// second earlier is as good.
	if now := time.Now(); fc.deadline.Sub(now) < timeout-time.Second || fc.deadline.Sub(now) > timeout {
		fc.deadline = now.Add(timeout)
		_ = fc.c.SetReadDeadline(fc.deadline)
	}
	n, err := fc.c.Read(fc.buf[fc.end:])
	fc.end += n
	if waiting && !fc.setIdle(false) {
		return net.ErrClosed
	}
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// setIdle marks the connection idle or busy; it returns false when the
// server is shutting down.
func (fc *fastConn) setIdle(idle bool) bool {
	fc.idle.Store(idle)
	return !fc.l.closing.Load()
}

func (fc *fastConn) closing() bool { return fc.l.closing.Load() }

// answer writes the memoised answer to req, or a NAR the cache holds, or
// returns false without writing anything when it has neither.
func (fc *fastConn) answer(ctx context.Context, req *fastRequest) bool {
	if req.nar.kind == routeNAR {
		return fc.answerNAR(ctx, req)
	}
	s := fc.l.s
	contentType, length, body := typeCacheInfo, s.cacheInfoLength, s.cacheInfo
	if !req.cacheInfo {
		r, ok := s.memoised(ctx, req.hash)
		if !ok {
			return false
		}
		contentType, length, body = typeNarinfo, r.length[0], r.body
	}
	fc.start += req.size
	now := time.Now()
	out := fc.header(now, contentType, length)
	if !req.head {
		out = append(out, body...)
	}
	fc.out = out
	kind, sent := KindNarinfo, int64(0)
	if req.cacheInfo {
		kind = KindCacheInfo
	}
	if !req.head {
		sent = int64(len(body))
	}
	fc.observe(req, kind, sent)
	// As with reads, a deadline set less than a second ago is as good.
	if fc.wdeadline.Sub(now) < fastWriteTimeout-time.Second {
		fc.wdeadline = now.Add(fastWriteTimeout)
		_ = fc.c.SetWriteDeadline(fc.wdeadline)
	}
	if _, err := fc.c.Write(out); err != nil {
		// The client is gone: the next read fails and ends the connection.
		_ = fc.c.Close()
	}
	return true
}

// answerNAR sends the variant of a NAR that req names when the item is
// published and the NAR cache holds that variant, exactly as serveNAR
// would: the cache's files were checked against the narinfo before they
// were committed, so they go out with sendfile, unchecked again. It returns
// false without writing anything otherwise: net/http then streams the NAR
// from the Source through the verifier, or answers 404.
func (fc *fastConn) answerNAR(ctx context.Context, req *fastRequest) bool {
	s, rt := fc.l.s, req.nar
	if rt.comp != CompressionNone && !s.offers(rt.comp) {
		return false
	}
	ni, err := s.lookup(ctx, rt.base[:store.HashLen])
	if err != nil || ni.StorePath != s.storePath(rt.base) {
		return false
	}
	key := narcache.Key(rt.comp, rt.base)
	f, size, err := s.cfg.Cache.Get(key)
	if err != nil {
		return false
	}
	defer f.Close()
	s.setSize(key, size)
	fc.start += req.size
	fc.out = fc.header(time.Now(), typeNAR, strconv.FormatInt(size, 10))
	// Like net/http, no write deadline while a NAR goes out: a large one
	// takes long on a slow link. Shutdown still closes the connection.
	fc.wdeadline = time.Time{}
	_ = fc.c.SetWriteDeadline(fc.wdeadline)
	var sent int64
	if req.head || size == 0 {
		_, err = fc.c.Write(fc.out)
	} else {
		err = writeMore(fc.c, fc.out)
	}
	if err == nil && !req.head {
		s.countNARHit()
		// A file under a LimitedReader is what TCPConn.ReadFrom sends
		// with sendfile; io.Copy finds that ReadFrom.
		sent, err = io.Copy(fc.c, io.LimitReader(f, size))
		if err == nil && sent != size {
			err = io.ErrUnexpectedEOF
		}
	}
	fc.observe(req, KindNAR, sent)
	if err != nil {
		// The client is gone, or the file was cut: a short body, and the
		// next read ends the connection.
		_ = fc.c.Close()
	}
	return true
}

// writeMore writes p to c, telling a TCP connection's kernel that more
// follows at once (MSG_MORE), so that an answer's header leaves in the same
// segment as the start of the file sendfile sends after it, as nginx's
// tcp_nopush does. Without it the header is a small segment of its own,
// and the client wakes up twice per answer. Other connections get a Write.
func writeMore(c net.Conn, p []byte) error {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		_, err := c.Write(p)
		return err
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return err
	}
	var werr error
	err = rc.Write(func(fd uintptr) bool {
		for len(p) > 0 {
			n, err := unix.SendmsgN(int(fd), p, nil, nil, unix.MSG_MORE|unix.MSG_NOSIGNAL)
			switch {
			case errors.Is(err, unix.EAGAIN):
				return false // wait until the socket is writable
			case errors.Is(err, unix.EINTR):
				continue
			case err != nil:
				werr = err
				return true
			}
			p = p[n:]
		}
		return true
	})
	if err != nil {
		return err
	}
	return werr
}

// header is the start of a 200 answer with the header fields ServeHTTP
// sends for a hit, in net/http's order, through the empty line.
func (fc *fastConn) header(now time.Time, contentType, length string) []byte {
	out := append(fc.out[:0], "HTTP/1.1 200 OK\r\nCache-Control: "...)
	out = append(out, fc.l.s.hitCacheControl...)
	out = append(out, "\r\nContent-Length: "...)
	out = append(out, length...)
	out = append(out, "\r\nContent-Type: "...)
	out = append(out, contentType...)
	out = append(out, "\r\nDate: "...)
	out = now.UTC().AppendFormat(out, http.TimeFormat)
	return append(out, "\r\n\r\n"...)
}

// observe counts an answer of the fast path and tells the test hook and
// the Observer of it.
func (fc *fastConn) observe(req *fastRequest, kind string, sent int64) {
	s := fc.l.s
	s.fastAnswers.Add(1)
	if s.observe != nil {
		s.observe(req.asHTTP())
	}
	if s.cfg.Observer != nil {
		s.cfg.Observer.SubstituteRequest(kind, http.StatusOK, sent)
	}
}

// handOff gives the connection and its unconsumed bytes to net/http.
func (fc *fastConn) handOff() {
	// net/http sets no write deadline of its own (NARs may take long).
	_ = fc.c.SetDeadline(time.Time{})
	hc := &handedConn{Conn: fc.c, pending: bytes.Clone(fc.buf[fc.start:fc.end])}
	hc.tcp, _ = fc.c.(*net.TCPConn)
	select {
	case fc.l.handoff <- hc:
	case <-fc.l.done:
		_ = fc.c.Close()
	}
}

// handedConn is a connection net/http takes over from the fast path: reads
// return the bytes the fast path read but did not consume first. ReadFrom
// and CloseWrite reach the TCP connection, so that net/http still sends
// files with sendfile and closes connections gracefully.
type handedConn struct {
	net.Conn
	tcp     *net.TCPConn
	pending []byte
}

func (h *handedConn) Read(p []byte) (int, error) {
	if len(h.pending) > 0 {
		n := copy(p, h.pending)
		h.pending = h.pending[n:]
		return n, nil
	}
	return h.Conn.Read(p)
}

// ReadFrom lets io.Copy to the connection use sendfile.
func (h *handedConn) ReadFrom(r io.Reader) (int64, error) {
	if h.tcp != nil {
		return h.tcp.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{h.Conn}, r)
}

// CloseWrite shuts down the writing side, as net/http does before closing.
func (h *handedConn) CloseWrite() error {
	if h.tcp != nil {
		return h.tcp.CloseWrite()
	}
	return nil
}

// memoised returns the memoised answer for the narinfo of hash when the
// Source still gives the narinfo it was printed from and the cache still
// holds every variant it lists: exactly when ServeHTTP would send the same
// bytes.
func (s *Server) memoised(ctx context.Context, hash string) (*rendered, bool) {
	s.rmu.RLock()
	r := s.rendered[hash]
	s.rmu.RUnlock()
	if r == nil {
		return nil, false
	}
	ni, err := s.lookup(ctx, hash)
	if err != nil || ni != r.ni || !s.allCached(r.keys) {
		return nil, false
	}
	return r, true
}
