package meshsource

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/tbfg/tbfg-node/scheduler"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/substitutes/publish"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine,
// with a channel that wakes the reader at every write.
type syncBuffer struct {
	mu    sync.Mutex
	b     bytes.Buffer
	wrote chan struct{}
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Write(p)
	select {
	case s.wrote <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits until the buffer holds want.
func (s *syncBuffer) waitFor(t *testing.T, want string, done <-chan error) {
	t.Helper()
	for s.String() != want {
		select {
		case <-s.wrote:
		case err := <-done:
			t.Fatalf("the follower ended with %v after %q; want %q", err, s.String(), want)
		}
	}
}

// TestBuildLogFollowed follows, from member c, the log of a build that runs
// on member a: before the log exists, while a writes it, and to its end,
// which the follower reports only once c's replica shows the build ended.
// A log c has of an earlier attempt is not what it reads.
func TestBuildLogFollowed(t *testing.T) {
	pm := newPipeMembers(t)
	c := pm.m.join(t, "c")
	cLogs := openLogs(t)
	src, err := New(Config{Self: "c", FSM: pm.m.fsm, Store: c.store, Remote: pm.remote, Logs: cLogs,
		Logger: testLogger(t, "c")})
	if err != nil {
		t.Fatal(err)
	}
	base := store.Path(fakeDrv).Base()
	writeLog(t, cLogs, base, "an earlier attempt on c\n")
	pm.m.apply(t, &scheduler.Submit{Time: t0, Submitter: "test", Node: "c", Derivations: []scheduler.Derivation{
		{Path: fakeDrv, System: "x86_64-linux", Outputs: []scheduler.Output{{Name: "out", Path: "/gnu/store/0123456789abcdfghijklmnpqrsvwxyz-hello"}}}}})
	ctx := context.Background()
	if _, _, err := src.BuildLog(ctx, 1, 0, false); !errors.Is(err, publish.ErrNotFound) {
		t.Fatalf("log of a queued build: %v, want ErrNotFound", err)
	}
	if _, _, err := src.BuildLog(ctx, 2, 0, false); !errors.Is(err, publish.ErrNotFound) {
		t.Fatalf("log of an unknown build: %v, want ErrNotFound", err)
	}
	// Followed from while it is queued.
	rc, start, err := src.BuildLog(ctx, 1, -100, true)
	if err != nil || start != 0 {
		t.Fatalf("follow before the log exists: start %d, %v", start, err)
	}
	defer rc.Close()
	got := &syncBuffer{wrote: make(chan struct{}, 1)}
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(got, rc)
		done <- err
	}()
	pm.m.apply(t, &scheduler.Allocate{Time: t0, Allocations: []scheduler.Allocation{{Build: 1, Node: "a"}}})
	pm.m.apply(t, &scheduler.Started{Time: t0, Build: 1, Node: "a"})
	w, err := pm.logs.Create(base)
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for _, line := range []string{"fetching inputs\n", "building\n", "<script>alert(1)</script>\n"} {
		io.WriteString(w, line)
		want.WriteString(line)
		got.waitFor(t, want.String(), done)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// The whole log was read, but c's replica still shows the build
	// running: the follower must not end yet.
	select {
	case err := <-done:
		t.Fatalf("the follower ended (%v) while the build still ran", err)
	default:
	}
	pm.m.apply(t, &scheduler.Failed{Time: t0, Build: 1, Node: "a", Reason: scheduler.ReasonBuildError, Message: "exit 1"})
	if err := <-done; err != nil {
		t.Fatalf("follower: %v", err)
	}
	if got.String() != want.String() {
		t.Fatalf("followed %q, want %q", got.String(), want.String())
	}

	// Once ended, the log is a's finished one, from any offset.
	rc2, start, err := src.BuildLog(ctx, 1, -9, false)
	if err != nil {
		t.Fatal(err)
	}
	tail, err := io.ReadAll(rc2)
	rc2.Close()
	if wantStart := int64(want.Len() - 9); err != nil || string(tail) != want.String()[wantStart:] || start != wantStart {
		t.Fatalf("end of the finished log: %q from %d, %v", tail, start, err)
	}
}

// TestFrameReader reads frames with keep-alives between them, and tells a
// clean end from a cut.
func TestFrameReader(t *testing.T) {
	var b bytes.Buffer
	for _, f := range []string{"", "hello ", "", "", "world"} {
		if err := writeFrame(&b, []byte(f)); err != nil {
			t.Fatal(err)
		}
	}
	whole := b.Bytes()
	got, err := io.ReadAll(&frameReader{r: bytes.NewReader(whole)})
	if err != nil || string(got) != "hello world" {
		t.Fatalf("frames: %q, %v", got, err)
	}
	for cut := 1; cut < len(whole); cut++ {
		_, err := io.ReadAll(&frameReader{r: bytes.NewReader(whole[:cut])})
		clean := cut == 4 || cut == 14 || cut == 18 || cut == 22 // at a frame boundary
		if clean != (err == nil) {
			t.Errorf("cut after %d bytes: %v", cut, err)
		}
	}
	huge := []byte{0, 1, 0, 1}
	if _, err := io.ReadAll(&frameReader{r: bytes.NewReader(huge)}); !errors.Is(err, ErrBadResponse) {
		t.Errorf("frame of 65537 bytes: %v, want ErrBadResponse", err)
	}
}
