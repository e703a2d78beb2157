package web

import (
	"errors"
	"sync"
	"sync/atomic"
)

// ErrTooManyClients is returned by the hub when MaxClients streams are
// already open: the client gets a 503 and its EventSource retries later.
var ErrTooManyClients = errors.New("too many event stream clients")

// errHubClosed is returned after the server stopped.
var errHubClosed = errors.New("event hub closed")

// hub fans encoded Server-Sent Events out to clients. Each client has a
// buffer of at most `buffer` messages; publishing never blocks, and a client
// whose buffer is full is dropped (its stream ends, and the browser's
// EventSource reconnects and reloads what it shows). Memory is therefore
// bounded by clients × buffer × message size, whatever the clients do.
type hub struct {
	buffer     int
	maxClients int

	mu      sync.Mutex
	clients map[*client]struct{}
	tails   int // clients that want log tails of running builds
	closed  bool
	// tailsChanged receives a value when tails goes from 0 to 1 or back.
	tailsChanged chan struct{}

	dropped atomic.Uint64 // clients dropped for being slow
}

// client is one open event stream.
type client struct {
	msgs  chan []byte   // encoded events, in order
	gone  chan struct{} // closed when the hub drops the client or closes
	tails bool
}

// kind is a class of event, so that only clients that asked get tails.
type kind uint8

const (
	kindState kind = iota // build and member changes: every client
	kindTail              // log tails of running builds: clients with ?tails=1
)

func newHub(buffer, maxClients int) *hub {
	return &hub{buffer: buffer, maxClients: maxClients, clients: map[*client]struct{}{},
		tailsChanged: make(chan struct{}, 1)}
}

// subscribe opens a client.
func (h *hub) subscribe(tails bool) (*client, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.closed:
		return nil, errHubClosed
	case len(h.clients) >= h.maxClients:
		return nil, ErrTooManyClients
	}
	c := &client{msgs: make(chan []byte, h.buffer), gone: make(chan struct{}), tails: tails}
	h.clients[c] = struct{}{}
	if tails {
		h.addTailsLocked(1)
	}
	return c, nil
}

// unsubscribe closes a client; it is idempotent.
func (h *hub) unsubscribe(c *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.removeLocked(c)
}

func (h *hub) removeLocked(c *client) {
	if _, ok := h.clients[c]; !ok {
		return
	}
	delete(h.clients, c)
	close(c.gone)
	if c.tails {
		h.addTailsLocked(-1)
	}
}

func (h *hub) addTailsLocked(d int) {
	was := h.tails > 0
	h.tails += d
	if was != (h.tails > 0) {
		select {
		case h.tailsChanged <- struct{}{}:
		default:
		}
	}
}

// wantsTails reports whether any client wants log tails.
func (h *hub) wantsTails() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.tails > 0
}

// count returns the number of open clients.
func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

// publish queues msg for every client of its kind, dropping those whose
// buffer is full. The same bytes are shared by every client.
func (h *hub) publish(k kind, msg []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		if k == kindTail && !c.tails {
			continue
		}
		select {
		case c.msgs <- msg:
		default:
			h.removeLocked(c)
			h.dropped.Add(1)
		}
	}
}

// close drops every client and refuses new ones.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for c := range h.clients {
		h.removeLocked(c)
	}
}
