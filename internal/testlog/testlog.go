package testlog

import (
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// New returns a logger, at debug level, that writes each record to t.Log
// after prefix and ": " (no separator when prefix is ""). Records arriving
// after the test ended are dropped: t.Log would panic, and a goroutine of the
// component may still be stopping.
func New(t testing.TB, prefix string) *slog.Logger { return NewAt(t, prefix, slog.LevelDebug) }

// NewAt is New for records at level and above only, for components whose
// debug records would drown a test's log.
func NewAt(t testing.TB, prefix string, level slog.Leveler) *slog.Logger {
	if prefix != "" {
		prefix += ": "
	}
	w := &writer{t: t, prefix: prefix}
	t.Cleanup(w.stop)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// writer hands each record's text to t.Log until the test ends.
type writer struct {
	t      testing.TB
	prefix string

	mu   sync.Mutex
	done bool
}

// Write implements io.Writer; slog writes one record per call.
func (w *writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(w.prefix + strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

func (w *writer) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done = true
}
