package meshsource

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tbfg/tbfg-node/node/buildlog"
	"github.com/tbfg/tbfg-node/scheduler"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/substitutes/publish"
)

// fakeDrv is a derivation path that no store holds.
const fakeDrv = "/gnu/store/0123456789abcdfghijklmnpqrsvwxyz-hello.drv"

// frame is a raw request frame: version, length and body as given.
func frame(version byte, n int, body string) []byte {
	b := []byte{version, 0, 0}
	binary.BigEndian.PutUint16(b[1:], uint16(n))
	return append(b, body...)
}

// rawStream is a handler's side of a stream whose request is fixed.
type rawStream struct {
	r   io.Reader
	out bytes.Buffer
}

func (s *rawStream) Read(b []byte) (int, error)  { return s.r.Read(b) }
func (s *rawStream) Write(b []byte) (int, error) { return s.out.Write(b) }
func (*rawStream) Close() error                  { return nil }

func TestServeBadRequests(t *testing.T) {
	m := newMesh(t)
	a := m.join(t, "a")
	sv := &streamServer{src: a.src, log: testLogger(t, "serve"), idle: time.Second}
	held := string(addText(t, a.store, "held", "content"))
	long := "/gnu/store/" + strings.Repeat("x", 2000)
	tests := []struct {
		name   string
		stream string
		req    []byte
		want   string
	}{
		{"empty", NARStream, nil, "request header: unexpected EOF"},
		{"short header", NARStream, []byte{1, 0}, "request header: unexpected EOF"},
		{"wrong version", NARStream, frame(7, len(held), held), "protocol version 7, want 1"},
		{"overlong", NARStream, frame(1, len(long), long), "path of 2011 bytes, more than the 1024 allowed"},
		{"truncated path", NARStream, frame(1, len(held)+5, held), "request path (" + strconv.Itoa(len(held)+5) + " bytes): unexpected EOF"},
		{"outside the store", NARStream, frame(1, 11, "/etc/passwd"), "not in store directory /gnu/store"},
		{"below an item", NARStream, frame(1, len(held)+7, held+"/bin/sh"), "invalid store path"},
		{"dot dot", NARStream, frame(1, 17, "/gnu/store/../etc"), "invalid store path"},
		{"garbage", NARStream, []byte("GET / HTTP/1.1\r\n\r\n"), "protocol version 71, want 1"},
		{"log of a non-derivation", LogStream, frame(1, len(held), held), "not a derivation"},
		{"log, wrong version", LogStream, frame(3, len(fakeDrv), fakeDrv), "protocol version 3, want 1 to 2"},
		{"log, no offset", LogStream, append(frame(2, len(fakeDrv), fakeDrv), 0, 0, 0), "request offset and flags: unexpected EOF"},
		{"log, unknown flags", LogStream, append(frame(2, len(fakeDrv), fakeDrv), 0, 0, 0, 0, 0, 0, 0, 0, 0x82),
			"unknown flags 0x82"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			handle := sv.handler(tt.stream, sv.openNAR)
			if tt.stream == LogStream {
				handle = sv.serveLog
			}
			s := &rawStream{r: bytes.NewReader(tt.req)}
			handle(context.Background(), "peer", s)
			status, msg, err := readStatus(&s.out)
			if err != nil || status != statusError || !strings.Contains(msg, tt.want) {
				t.Fatalf("response status %d, %q, %v; want an error containing %q", status, msg, err, tt.want)
			}
			if s.out.Len() != 0 {
				t.Fatalf("%d bytes after the error status", s.out.Len())
			}
		})
	}
}

// pipeMembers is two members of one state, a serving its store over a
// pipeNet and c reaching it with a StreamRemote.
type pipeMembers struct {
	m      *mesh
	a      *member
	net    *pipeNet
	remote *StreamRemote
	logs   *buildlog.Dir // a's log directory
}

func newPipeMembers(t *testing.T) *pipeMembers {
	m := newMesh(t)
	a := m.join(t, "a")
	logs := openLogs(t)
	a.src.cfg.Logs = logs
	pn := newPipeNet(t)
	if err := ServeStreams(pn.node("a"), a.src, testLogger(t, "a serve")); err != nil {
		t.Fatal(err)
	}
	if err := ServeStreams(pn.node("a"), a.src, nil); err == nil {
		t.Fatal("ServeStreams twice on one mesh: no error")
	}
	return &pipeMembers{m: m, a: a, net: pn, logs: logs,
		remote: &StreamRemote{Mesh: pn.node("c"), Dir: store.GuixDir, IdleTimeout: 5 * time.Second}}
}

func TestStreamRemoteNAR(t *testing.T) {
	pm := newPipeMembers(t)
	ctx := context.Background()
	p := addText(t, pm.a.store, "big", strings.Repeat("0123456789abcdef", 1<<16))
	var want bytes.Buffer
	if err := pm.a.store.Dump(p, &want); err != nil {
		t.Fatal(err)
	}

	t.Run("held", func(t *testing.T) {
		rc, err := pm.remote.OpenNAR(ctx, "a", p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("got %d bytes, %v; want the %d bytes of a's NAR", len(got), err, want.Len())
		}
	})
	t.Run("not held", func(t *testing.T) {
		missing := store.Path("/gnu/store/0123456789abcdfghijklmnpqrsvwxyz-missing")
		_, err := pm.remote.OpenNAR(ctx, "a", missing)
		if !errors.Is(err, publish.ErrNotFound) || !strings.Contains(err.Error(), string(missing)) {
			t.Fatalf("NAR of an item a lacks: %v; want ErrNotFound naming it", err)
		}
	})
	t.Run("bad path refused before sending", func(t *testing.T) {
		started := pm.net.started.Load()
		_, err := pm.remote.OpenNAR(ctx, "a", "/gnu/store/../etc/passwd")
		if !errors.Is(err, store.ErrBadPath) {
			t.Fatalf("NAR of a bad path: %v; want ErrBadPath", err)
		}
		if pm.net.started.Load() != started {
			t.Fatal("a bad path reached the peer")
		}
	})
	t.Run("unknown peer", func(t *testing.T) {
		if _, err := pm.remote.OpenNAR(ctx, "b", p); err == nil || !strings.Contains(err.Error(), "from b") {
			t.Fatalf("NAR from a peer with no handler: %v; want an error naming it", err)
		}
	})
	t.Run("early close stops the holder", func(t *testing.T) {
		rc, err := pm.remote.OpenNAR(ctx, "a", p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(rc, make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
		rc.Close()
		// The NAR is far larger than what was read: the handler returns
		// only because the reset made its writes fail.
		waitUntil(t, "holder's handler returned", func() bool { return pm.net.served.Load() == pm.net.started.Load() })
	})
	t.Run("cancel aborts", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		rc, err := pm.remote.OpenNAR(cctx, "a", p)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		if _, err := io.ReadFull(rc, make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
		cancel()
		if n, err := io.Copy(io.Discard, rc); err == nil {
			t.Fatalf("read %d more bytes and a clean end after cancel; want an error", n)
		}
	})
}

func TestStreamRemoteLog(t *testing.T) {
	pm := newPipeMembers(t)
	ctx := context.Background()
	writeLog(t, pm.logs, store.Path(fakeDrv).Base(), "building hello\nfailed\n")

	rc, start, err := pm.remote.OpenLog(ctx, "a", fakeDrv, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(got) != "building hello\nfailed\n" || start != 0 {
		t.Fatalf("log: %q from %d, %v", got, start, err)
	}
	other := store.Path("/gnu/store/0123456789abcdfghijklmnpqrsvwxyz-other.drv")
	if _, _, err := pm.remote.OpenLog(ctx, "a", other, 0, false); !errors.Is(err, publish.ErrNotFound) {
		t.Fatalf("log a lacks: %v; want ErrNotFound", err)
	}
}

// TestSourceLogFromMember checks that a Source whose Remote is a LogRemote
// serves the log of a build that ran on another member.
func TestSourceLogFromMember(t *testing.T) {
	pm := newPipeMembers(t)
	b := pm.m.join(t, "b") // a member without the log, asked too
	c := pm.m.join(t, "c")
	if err := ServeStreams(pm.net.node("b"), b.src, nil); err != nil {
		t.Fatal(err)
	}
	src, err := New(Config{Self: "c", FSM: pm.m.fsm, Store: c.store, Remote: pm.remote, Logs: openLogs(t),
		Logger: testLogger(t, "c")})
	if err != nil {
		t.Fatal(err)
	}
	out := "/gnu/store/0123456789abcdfghijklmnpqrsvwxyz-hello"
	pm.m.apply(t, &scheduler.Submit{Time: t0, Submitter: "test", Node: "c", Derivations: []scheduler.Derivation{
		{Path: fakeDrv, System: "x86_64-linux", Outputs: []scheduler.Output{{Name: "out", Path: out}}}}})
	ctx := context.Background()
	if _, err := src.Log(ctx, store.Path(fakeDrv).Base()); !errors.Is(err, publish.ErrNotFound) {
		t.Fatalf("log of a build never allocated: %v; want ErrNotFound", err)
	}
	pm.m.apply(t, &scheduler.Allocate{Time: t0, Allocations: []scheduler.Allocation{{Build: 1, Node: "a"}}})
	pm.m.apply(t, &scheduler.Failed{Time: t0, Build: 1, Node: "a", Reason: scheduler.ReasonBuildError, Message: "exit 1"})
	writeLog(t, pm.logs, store.Path(fakeDrv).Base(), "it broke\n")

	rc, err := src.Log(ctx, store.Path(fakeDrv).Base())
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(got) != "it broke\n" {
		t.Fatalf("log through c: %q, %v", got, err)
	}
}

// TestSourceLogRemovedOnBuilder checks that a member asking for a log that
// retention removed on the member that ran the build hears so, with the
// date, rather than only "not found".
func TestSourceLogRemovedOnBuilder(t *testing.T) {
	pm := newPipeMembers(t)
	c := pm.m.join(t, "c")
	src, err := New(Config{Self: "c", FSM: pm.m.fsm, Store: c.store, Remote: pm.remote, Logs: openLogs(t),
		Logger: testLogger(t, "c")})
	if err != nil {
		t.Fatal(err)
	}
	out := "/gnu/store/0123456789abcdfghijklmnpqrsvwxyz-hello"
	pm.m.apply(t, &scheduler.Submit{Time: t0, Submitter: "test", Node: "c", Derivations: []scheduler.Derivation{
		{Path: fakeDrv, System: "x86_64-linux", Outputs: []scheduler.Output{{Name: "out", Path: out}}}}})
	pm.m.apply(t, &scheduler.Allocate{Time: t0, Allocations: []scheduler.Allocation{{Build: 1, Node: "a"}}})
	pm.m.apply(t, &scheduler.Failed{Time: t0, Build: 1, Node: "a", Reason: scheduler.ReasonBuildError, Message: "exit 1"})
	writeLog(t, pm.logs, store.Path(fakeDrv).Base(), "it broke\n")
	removedAt := time.Now().Add(48 * time.Hour)
	if n, err := pm.logs.Prune(removedAt, buildlog.Retention{MaxAge: time.Nanosecond, FailedMaxAge: time.Nanosecond,
		MaxSize: 1 << 30}); err != nil || n != 1 {
		t.Fatalf("Prune: %d, %v; want the log removed", n, err)
	}
	_, _, err = src.BuildLog(context.Background(), 1, 0, false)
	if !errors.Is(err, publish.ErrNotFound) || !strings.Contains(err.Error(), "removed by retention on "+removedAt.UTC().Format(time.DateOnly)) {
		t.Fatalf("log removed on a: %v; want ErrNotFound saying when retention removed it", err)
	}
}

// writeLog writes the finished log of drvBase into logs.
func writeLog(t *testing.T, logs *buildlog.Dir, drvBase, text string) {
	t.Helper()
	w, err := logs.Create(drvBase)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(w, text); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func openLogs(t testing.TB) *buildlog.Dir {
	t.Helper()
	d, err := buildlog.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// waitUntil polls cond until it holds or 10 seconds pass.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 10s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add(frame(1, len(fakeDrv), fakeDrv))
	f.Add(frame(1, 11, "/etc/passwd"))
	f.Add(frame(1, 5000, "/gnu/store/"))
	f.Add(frame(2, 0, ""))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		p, err := decodeRequest(r, store.GuixDir)
		if err != nil {
			return
		}
		if _, err := store.GuixDir.ParsePath(string(p)); err != nil {
			t.Fatalf("decoded %q, which does not parse: %v", p, err)
		}
		if used := len(data) - r.Len(); used != 3+len(p) {
			t.Fatalf("read %d bytes for a frame of %d", used, 3+len(p))
		}
		enc, err := encodeRequest(p)
		if err != nil || !bytes.Equal(enc, data[:3+len(p)]) {
			t.Fatalf("re-encoded %q as %q, %v", data[:3+len(p)], enc, err)
		}
	})
}

func FuzzReadStatus(f *testing.F) {
	f.Add([]byte{statusOK, 'N', 'A', 'R'})
	f.Add([]byte{statusNotHeld, 0, 3, 'a', 'b', 'c'})
	f.Add([]byte{statusError, 0xff, 0xff})
	f.Add([]byte{9})
	f.Fuzz(func(t *testing.T, data []byte) {
		status, msg, err := readStatus(bytes.NewReader(data))
		if err != nil {
			return
		}
		if len(msg) > maxStatusMessage || status != statusOK && len(data) < 3+len(msg) {
			t.Fatalf("status %d with a message of %d bytes from %d bytes", status, len(msg), len(data))
		}
		var buf bytes.Buffer
		if err := writeStatus(&buf, status, msg); err != nil {
			t.Fatal(err)
		}
		if status == statusOK && buf.Len() != 1 || status != statusOK && utf8.ValidString(msg) && !bytes.Equal(buf.Bytes(), data[:buf.Len()]) {
			t.Fatalf("re-encoded %q as %q", data, buf.Bytes())
		}
	})
}
