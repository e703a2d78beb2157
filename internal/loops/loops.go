package loops

import (
	"context"
	"errors"
	"log/slog"
	"sync"
)

// Group runs background loops under one context and stops them in reverse
// order. Its methods may be called from any goroutine.
type Group struct {
	ctx context.Context
	log *slog.Logger

	mu      sync.Mutex
	stops   []step // in start order
	stopped bool
}

// step is one entry of the stop order: a loop to cancel and wait for, or a
// cleanup to run.
type step struct {
	name string
	stop func() error
}

// New returns a group whose loops run until ctx ends or Stop cancels them.
// log receives a debug record as each step stops; nil discards them.
func New(ctx context.Context, log *slog.Logger) *Group {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Group{ctx: ctx, log: log}
}

// Go runs run in a new goroutine once gate is closed (at once for a nil
// gate), with a context that Stop cancels. If that context ends before the
// gate opens, run is not called. Stop returns run's error, unless it is the
// context's cancellation. After Stop, Go does nothing.
func (g *Group) Go(name string, gate <-chan struct{}, run func(ctx context.Context) error) {
	ctx, cancel := context.WithCancel(g.ctx)
	done := make(chan error, 1)
	if !g.push(name, func() error { cancel(); return <-done }) {
		cancel()
		return
	}
	go func() {
		defer cancel()
		if gate != nil {
			select {
			case <-gate:
			case <-ctx.Done():
				done <- nil
				return
			}
		}
		err := run(ctx)
		if errors.Is(err, context.Canceled) {
			err = nil
		}
		done <- err
	}()
}

// Defer registers cleanup to run during Stop in this place of the order:
// after the loops started later have stopped, before those started earlier
// stop. Stop returns its error. After Stop, cleanup runs at once.
func (g *Group) Defer(name string, cleanup func() error) {
	if !g.push(name, cleanup) {
		if err := cleanup(); err != nil {
			g.log.Warn("cleanup after stop", "step", name, "err", err)
		}
	}
}

// push appends a step unless the group has stopped.
func (g *Group) push(name string, stop func() error) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return false
	}
	g.stops = append(g.stops, step{name: name, stop: stop})
	return true
}

// Stop cancels each loop and waits for it, and runs each cleanup, the last
// started first, and returns their errors joined. Only the first call
// stops anything; later ones return nil.
func (g *Group) Stop() error {
	g.mu.Lock()
	stops := g.stops
	g.stops, g.stopped = nil, true
	g.mu.Unlock()
	var errs []error
	for i := len(stops) - 1; i >= 0; i-- {
		errs = append(errs, stops[i].stop())
		g.log.Debug("stopped", "step", stops[i].name)
	}
	return errors.Join(errs...)
}
