package mesh

import (
	"context"
	"runtime"
	"strings"
	"sync"
)

// leadership is whether this node leads, fed by Raft's NotifyCh, and the
// channels watching it.
type leadership struct {
	mu       sync.Mutex
	leading  bool
	from     *raftNode // the Raft incarnation that last reported leading
	watchers map[chan bool]func() bool
	closed   bool
}

func newLeadership() *leadership {
	return &leadership{watchers: map[chan bool]func() bool{}}
}

// set records what rn reported. A report from an incarnation other than
// the one leading cannot end its leadership: after a wipe the old Raft's
// last "false" may arrive late.
func (l *leadership) set(rn *raftNode, v bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !v && l.from != rn {
		return
	}
	if v {
		l.from = rn
	} else {
		l.from = nil
	}
	if l.leading == v {
		return
	}
	l.leading = v
	for ch := range l.watchers {
		offer(ch, v)
	}
}

// offer replaces what ch holds by v without blocking: a watcher that
// falls behind sees only the latest state.
func offer(ch chan bool, v bool) {
	select {
	case <-ch:
	default:
	}
	ch <- v
}

func (l *leadership) get() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.leading
}

// watch adds a watcher that ctx removes.
func (l *leadership) watch(ctx context.Context) <-chan bool {
	ch := make(chan bool, 1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		close(ch)
		return ch
	}
	ch <- l.leading
	l.watchers[ch] = context.AfterFunc(ctx, func() { l.unwatch(ch) })
	return ch
}

func (l *leadership) unwatch(ch chan bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.watchers[ch]; ok {
		delete(l.watchers, ch)
		close(ch)
	}
}

// close ends every watch; later watches get a closed channel.
func (l *leadership) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	l.leading = false
	for ch, stop := range l.watchers {
		stop()
		close(ch)
	}
	clear(l.watchers)
}

// WatchLeadership reports whether this node leads the Raft cluster: the
// channel first holds the current state, then true each time this node
// becomes leader and false each time it stops leading (stepping down,
// losing quorum, a Raft restart, Close). It never blocks the mesh: it holds
// one value, and a reader that falls behind finds only the latest state,
// so consecutive reads may repeat a value. The channel is closed when ctx
// ends or the mesh closes; a closed channel means "not leading". It is
// what starts and stops work that only the leader does, such as the build
// scheduler's allocation loop. Leadership can be lost before the reader
// acts on a true, so that work must still go through Apply.
func (m *Mesh) WatchLeadership(ctx context.Context) <-chan bool {
	return m.lead.watch(ctx)
}

// IsLeader reports whether this node currently leads, as last reported by
// Raft.
func (m *Mesh) IsLeader() bool { return m.lead.get() }

// maxStackDump bounds the goroutine dump a stuck Close logs.
const maxStackDump = 64 << 10

// stuckStacks returns the stacks of the goroutines running the mesh's,
// Raft's or libp2p's code, for the log of a Close that did not finish.
func stuckStacks() string {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var b strings.Builder
	for _, g := range strings.Split(string(buf), "\n\n") {
		if !strings.Contains(g, "tbfg-node/mesh.") && !strings.Contains(g, "hashicorp/raft.") && !strings.Contains(g, "libp2p") {
			continue
		}
		if b.Len()+len(g) > maxStackDump {
			b.WriteString("…")
			break
		}
		b.WriteString(g)
		b.WriteString("\n\n")
	}
	return b.String()
}
