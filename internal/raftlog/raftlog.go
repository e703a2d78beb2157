package raftlog

import (
	"context"
	"io"
	"log"
	"log/slog"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// New returns an hclog.Logger that writes Raft's records to l. Raft's Trace
// level maps to slog's Debug-4; hclog's level setting is kept only to answer
// IsX queries, the slog handler decides what is printed. The messages Raft
// repeats while a peer is unreachable are downgraded and limited to one per
// Window and peer (see rules).
func New(l *slog.Logger, name string) hclog.Logger {
	return &logger{l: l, name: name, level: hclog.Debug, lim: newLimiter()}
}

type logger struct {
	l     *slog.Logger
	name  string
	args  []any
	level hclog.Level
	lim   *limiter // shared with derived loggers
}

func slogLevel(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace:
		return slog.LevelDebug - 4
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

// Log implements hclog.Logger.
func (g *logger) Log(level hclog.Level, msg string, args ...any) {
	r, noisy := rules[msg]
	if noisy {
		level = r.level
	}
	if level == hclog.Off || level < g.level && level != hclog.NoLevel {
		return
	}
	if noisy && r.limited {
		print, suppressed := g.lim.allow(limitKey(msg, args))
		if !print {
			return
		}
		if suppressed > 0 {
			args = append(args[:len(args):len(args)], "suppressed_repeats", suppressed)
		}
	}
	all := make([]any, 0, len(g.args)+len(args)+2)
	if g.name != "" {
		all = append(all, "logger", g.name)
	}
	all = append(all, g.args...)
	all = append(all, args...)
	g.l.Log(context.Background(), slogLevel(level), msg, all...)
}

// Trace implements hclog.Logger.
func (g *logger) Trace(msg string, args ...any) { g.Log(hclog.Trace, msg, args...) }

// Debug implements hclog.Logger.
func (g *logger) Debug(msg string, args ...any) { g.Log(hclog.Debug, msg, args...) }

// Info implements hclog.Logger.
func (g *logger) Info(msg string, args ...any) { g.Log(hclog.Info, msg, args...) }

// Warn implements hclog.Logger.
func (g *logger) Warn(msg string, args ...any) { g.Log(hclog.Warn, msg, args...) }

// Error implements hclog.Logger.
func (g *logger) Error(msg string, args ...any) { g.Log(hclog.Error, msg, args...) }

func (g *logger) enabled(level hclog.Level) bool {
	return level >= g.level && g.l.Enabled(context.Background(), slogLevel(level))
}

// IsTrace implements hclog.Logger.
func (g *logger) IsTrace() bool { return g.enabled(hclog.Trace) }

// IsDebug implements hclog.Logger.
func (g *logger) IsDebug() bool { return g.enabled(hclog.Debug) }

// IsInfo implements hclog.Logger.
func (g *logger) IsInfo() bool { return g.enabled(hclog.Info) }

// IsWarn implements hclog.Logger.
func (g *logger) IsWarn() bool { return g.enabled(hclog.Warn) }

// IsError implements hclog.Logger.
func (g *logger) IsError() bool { return g.enabled(hclog.Error) }

// ImpliedArgs implements hclog.Logger.
func (g *logger) ImpliedArgs() []any { return append([]any(nil), g.args...) }

// With implements hclog.Logger.
func (g *logger) With(args ...any) hclog.Logger {
	c := *g
	c.args = append(append([]any(nil), g.args...), args...)
	return &c
}

// Name implements hclog.Logger.
func (g *logger) Name() string { return g.name }

// Named implements hclog.Logger.
func (g *logger) Named(name string) hclog.Logger {
	c := *g
	if c.name != "" {
		name = c.name + "." + name
	}
	c.name = name
	return &c
}

// ResetNamed implements hclog.Logger.
func (g *logger) ResetNamed(name string) hclog.Logger {
	c := *g
	c.name = name
	return &c
}

// SetLevel implements hclog.Logger. It changes only this logger value.
func (g *logger) SetLevel(level hclog.Level) { g.level = level }

// GetLevel implements hclog.Logger.
func (g *logger) GetLevel() hclog.Level { return g.level }

// StandardLogger implements hclog.Logger.
func (g *logger) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(g.StandardWriter(opts), "", 0)
}

// StandardWriter implements hclog.Logger: each written line becomes one
// Info record.
func (g *logger) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return writer{g}
}

type writer struct{ g *logger }

func (w writer) Write(p []byte) (int, error) {
	w.g.Info(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
