package testlog

import (
	"log/slog"
	"strings"
	"testing"
)

// recorder is a testing.TB that keeps what is logged.
type recorder struct {
	testing.TB
	lines    []string
	cleanups []func()
}

func (r *recorder) Log(args ...any) {
	for _, a := range args {
		r.lines = append(r.lines, a.(string))
	}
}

func (r *recorder) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }

func TestNew(t *testing.T) {
	for _, prefix := range []string{"node A: ", ""} {
		t.Run(prefix, func(t *testing.T) {
			r := &recorder{TB: t}
			log := New(r, strings.TrimSuffix(prefix, ": "))
			log.Info("hello", "k", "v")
			log.Debug("detail")
			if len(r.lines) != 2 {
				t.Fatalf("logged %q, want 2 lines", r.lines)
			}
			if l := r.lines[0]; !strings.HasPrefix(l, prefix+"time=") || !strings.HasSuffix(l, " level=INFO msg=hello k=v") {
				t.Errorf("line %q, want %q, the time, and the record without a newline", l, prefix)
			}
			for _, f := range r.cleanups {
				f()
			}
			log.Info("after the test")
			if len(r.lines) != 2 {
				t.Errorf("logged after the test ended: %q", r.lines[2:])
			}
		})
	}
}

func TestNewAt(t *testing.T) {
	r := &recorder{TB: t}
	log := NewAt(r, "n", slog.LevelWarn)
	log.Info("quiet")
	log.Warn("loud")
	if len(r.lines) != 1 || !strings.Contains(r.lines[0], "msg=loud") {
		t.Errorf("logged %q, want only the warning", r.lines)
	}
}
