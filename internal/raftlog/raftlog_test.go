package raftlog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

func TestBridge(t *testing.T) {
	tests := []struct {
		name string
		log  func(hclog.Logger)
		want []string
		none bool
	}{
		{"info with args", func(l hclog.Logger) { l.Info("hello", "k", 1) }, []string{"level=INFO", "msg=hello", "k=1", "logger=raft"}, false},
		{"named and with", func(l hclog.Logger) { l.Named("x").With("a", "b").Warn("w") }, []string{"level=WARN", "logger=raft.x", "a=b"}, false},
		{"error", func(l hclog.Logger) { l.Error("bad", "error", "boom") }, []string{"level=ERROR", "error=boom"}, false},
		{"debug filtered by handler", func(l hclog.Logger) { l.Debug("quiet") }, nil, true},
		{"standard logger", func(l hclog.Logger) { l.StandardLogger(nil).Print("line") }, []string{"msg=line"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := New(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})), "raft")
			tt.log(l)
			out := buf.String()
			if tt.none && out != "" {
				t.Fatalf("want no output, got %q", out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output %q lacks %q", out, w)
				}
			}
		})
	}
}

// TestNoisyMessages feeds the messages a cut-off node's Raft repeats through
// the bridge with a fake clock and checks what reaches the slog handler.
func TestNoisyMessages(t *testing.T) {
	peerA := []any{"peer", "A", "error", "dial failed"}
	peerB := []any{"peer", "B", "error", "dial failed"}
	type rec struct {
		at   time.Duration // fake time of the call
		msg  string
		args []any
	}
	tests := []struct {
		name  string
		recs  []rec
		want  []string // one expected substring per printed record, in order
		lacks string   // a substring no output may contain
	}{
		{
			name: "pre-vote failures are warnings, once per window and target",
			recs: []rec{
				{0, "failed to make requestVote RPC", []any{"target", "A", "term", 3}},
				{100 * time.Millisecond, "failed to make requestVote RPC", []any{"target", "A", "term", 4}},
				{200 * time.Millisecond, "failed to make requestVote RPC", []any{"target", "B", "term", 4}},
				{time.Second, "failed to make requestVote RPC", []any{"target", "A", "term", 5}},
				{Window + time.Millisecond, "failed to make requestVote RPC", []any{"target", "A", "term", 9}},
			},
			want:  []string{"level=WARN msg=\"failed to make requestVote RPC\" logger=raft target=A term=3", "target=B", "term=9 suppressed_repeats=2"},
			lacks: "level=ERROR",
		},
		{
			name: "heartbeat failures per peer",
			recs: []rec{
				{0, "failed to heartbeat to", peerA}, {time.Millisecond, "failed to heartbeat to", peerA},
				{2 * time.Millisecond, "failed to heartbeat to", peerB},
			},
			want:  []string{"peer=A", "peer=B"},
			lacks: "level=ERROR",
		},
		{
			name:  "refused votes are debug",
			recs:  []rec{{0, "rejecting pre-vote request since we have a leader", []any{"from", "A"}}},
			want:  nil,
			lacks: "rejecting",
		},
		{
			name: "other errors pass unchanged and unlimited",
			recs: []rec{
				{0, "failed to append to logs", []any{"error", "disk full"}},
				{time.Millisecond, "failed to append to logs", []any{"error", "disk full"}},
			},
			want: []string{"level=ERROR msg=\"failed to append to logs\"", "level=ERROR msg=\"failed to append to logs\""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := New(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
				Level:       slog.LevelInfo,
				ReplaceAttr: dropTime,
			})), "raft").(*logger)
			start := time.Unix(1000, 0)
			var now time.Time
			l.lim.now = func() time.Time { return now }
			for _, r := range tt.recs {
				now = start.Add(r.at)
				// Derived loggers share the limiter, as Raft derives them.
				l.With().Error(r.msg, r.args...)
			}
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if buf.Len() == 0 {
				lines = nil
			}
			if len(lines) != len(tt.want) {
				t.Fatalf("printed %d records, want %d:\n%s", len(lines), len(tt.want), buf.String())
			}
			for i, w := range tt.want {
				if !strings.Contains(lines[i], w) {
					t.Errorf("record %d %q lacks %q", i, lines[i], w)
				}
			}
			if tt.lacks != "" && strings.Contains(buf.String(), tt.lacks) {
				t.Errorf("output contains %q:\n%s", tt.lacks, buf.String())
			}
		})
	}
}

func dropTime(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}
