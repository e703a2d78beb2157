package raftlog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

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
