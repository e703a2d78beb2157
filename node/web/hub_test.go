package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestHubDropsSlowClient(t *testing.T) {
	h := newHub(4, 10)
	slow, err := h.subscribe(false)
	if err != nil {
		t.Fatal(err)
	}
	fast, _ := h.subscribe(false)
	var got []string
	for i := range 10 {
		h.publish(kindState, []byte(fmt.Sprint(i)))
		// The fast client reads everything as it comes.
		got = append(got, string(<-fast.msgs))
		if len(slow.msgs) > 4 {
			t.Fatalf("slow client holds %d messages, buffer is 4", len(slow.msgs))
		}
	}
	select {
	case <-slow.gone:
	default:
		t.Fatal("a client that read nothing was not dropped")
	}
	if strings.Join(got, ",") != "0,1,2,3,4,5,6,7,8,9" {
		t.Fatalf("fast client got %v", got)
	}
	if h.count() != 1 || h.dropped.Load() != 1 {
		t.Fatalf("%d clients, %d dropped", h.count(), h.dropped.Load())
	}
	h.unsubscribe(slow) // harmless after a drop
	h.close()
	select {
	case <-fast.gone:
	default:
		t.Fatal("close did not end the remaining client")
	}
	if _, err := h.subscribe(false); !errors.Is(err, errHubClosed) {
		t.Fatalf("subscribe after close: %v", err)
	}
}

func TestHubLimitsClientsAndTails(t *testing.T) {
	h := newHub(4, 2)
	a, _ := h.subscribe(true)
	b, _ := h.subscribe(false)
	if _, err := h.subscribe(false); !errors.Is(err, ErrTooManyClients) {
		t.Fatalf("third client: %v", err)
	}
	<-h.tailsChanged // 0 → 1 tail client
	h.publish(kindTail, []byte("tail"))
	if len(a.msgs) != 1 || len(b.msgs) != 0 {
		t.Fatalf("tail went to %d/%d clients", len(a.msgs), len(b.msgs))
	}
	h.unsubscribe(a)
	<-h.tailsChanged // 1 → 0
	if h.wantsTails() {
		t.Fatal("tails still wanted")
	}
}

// stuckWriter is a ResponseWriter whose writes block until released, like a
// client that stopped reading with full socket buffers.
type stuckWriter struct {
	header  http.Header
	release chan struct{}
	mu      sync.Mutex
	writes  int
}

func (w *stuckWriter) Header() http.Header { return w.header }
func (w *stuckWriter) WriteHeader(int)     {}
func (w *stuckWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	w.writes++
	n := w.writes
	w.mu.Unlock()
	if n > 1 { // the first write (retry:) passes; the next one sticks
		<-w.release
		return 0, errors.New("connection reset")
	}
	return len(b), nil
}

// TestSlowStreamDropped runs the /events handler for a client that stops
// reading: publishing goes on without waiting for it, it is dropped once its
// buffer is full, and its handler ends.
func TestSlowStreamDropped(t *testing.T) {
	h := newHub(8, 10)
	s := &Server{cfg: Config{Heartbeat: time.Hour, WriteTimeout: time.Second}, hub: h}
	w := &stuckWriter{header: http.Header{}, release: make(chan struct{})}
	c, _ := h.subscribe(false)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.stream(w, httptest.NewRequest("GET", "/events", nil).WithContext(context.Background()), c, 0, 0)
	}()
	fast, _ := h.subscribe(false)
	for i := range 100 {
		h.publish(kindState, sse("build", "", []byte(fmt.Sprintf(`{"id":%d}`, i))))
		<-fast.msgs
	}
	select {
	case <-c.gone:
	case <-time.After(10 * time.Second):
		t.Fatal("the stuck client was not dropped")
	}
	if h.dropped.Load() != 1 {
		t.Fatalf("%d clients dropped, want only the stuck one", h.dropped.Load())
	}
	close(w.release) // the write fails as a reset connection would
	<-done
}
