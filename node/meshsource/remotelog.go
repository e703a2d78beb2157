package meshsource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/tbfg/tbfg-node/node/buildlog"
	"github.com/tbfg/tbfg-node/scheduler"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/substitutes/publish"
)

// maxLogPeers bounds how many members one log request asks.
const maxLogPeers = 16

// Waits of a followed build log (BuildLog).
const (
	// logRetry is how often a follower of an active build without a log
	// yet looks for it again (it appears once the inputs are fetched).
	logRetry = 500 * time.Millisecond
	// endWait bounds how long a follower that read a complete log waits
	// for this node's replica to show that the build ended.
	endWait = 10 * time.Second
)

// BuildLog opens the log of build id from byte offset (negative: from the
// end of what is written) and returns the offset of its first byte. It
// reads this node's log directory or asks the member that has the log of
// the build's latest attempt: the node it runs on while it is allocated or
// running, else the node of its latest attempt, then the holders of its
// outputs and the other active members (at most 16 in all).
//
// With follow, the reader goes on while the build runs, waiting for a log
// that does not exist yet (the build is queued, or fetching its inputs),
// and returns
// io.EOF once the log is complete and this node's replica shows the build
// ended. The reader's Read returns once ctx ends. An unknown build, or one
// without a log anywhere, is an error wrapping publish.ErrNotFound.
func (s *Source) BuildLog(ctx context.Context, id scheduler.BuildID, offset int64, follow bool) (io.ReadCloser, int64, error) {
	b, ok := s.build(id)
	if !ok {
		return nil, 0, fmt.Errorf("build %d: %w", id, publish.ErrNotFound)
	}
	rc, start, err := s.openBuildLog(ctx, b, offset, follow)
	switch {
	case err == nil && follow:
		return &followedLog{s: s, ctx: ctx, b: b, rc: rc}, start, nil
	case err == nil:
		return rc, start, nil
	case follow && !b.State.Done() && errors.Is(err, publish.ErrNotFound):
		// No log yet: the first Read waits for it, from the start.
		start = max(offset, 0)
		return &followedLog{s: s, ctx: ctx, b: b, offset: start}, start, nil
	}
	return nil, 0, err
}

// build reads build id from the replica.
func (s *Source) build(id scheduler.BuildID) (b scheduler.BuildInfo, ok bool) {
	s.cfg.FSM.Read(func(st *scheduler.State) { b, ok = st.Build(id) })
	return b, ok
}

// active reports whether b is allocated to or running on a node.
func active(b scheduler.BuildInfo) bool {
	return b.State == scheduler.BuildAllocated || b.State == scheduler.BuildRunning
}

// openBuildLog opens the log of b from the first member that has it.
func (s *Source) openBuildLog(ctx context.Context, b scheduler.BuildInfo, offset int64, follow bool) (io.ReadCloser, int64, error) {
	drv := store.Path(b.Drv)
	lr, _ := s.cfg.Remote.(LogRemote)
	var errs []error
	var builderSays error // why the latest attempt's node has no log: retention may have removed it
	for _, peer := range s.logPeers(b) {
		var rc io.ReadCloser
		var start int64
		var err error
		switch {
		case peer == s.cfg.Self:
			rc, start, err = s.openLocalLog(ctx, drv.Base(), offset, follow)
		case lr != nil:
			rc, start, err = lr.OpenLog(ctx, peer, drv, offset, follow)
		default:
			continue
		}
		if err == nil {
			return rc, start, nil
		}
		switch {
		case !errors.Is(err, publish.ErrNotFound):
			s.cfg.Logger.Debug("member failed to send a build log", "drv", drv, "peer", peer, "err", err)
			errs = append(errs, err)
		case peer == b.LastNode && builderSays == nil:
			builderSays = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) > 0 {
		return nil, 0, fmt.Errorf("log of build %d: %w", b.ID, errors.Join(errs...))
	}
	if builderSays != nil && b.LastNode != s.cfg.Self {
		return nil, 0, fmt.Errorf("log of build %d: no member has it; %s, which ran it, says: %w", b.ID, b.LastNode, builderSays)
	}
	return nil, 0, fmt.Errorf("log of build %d: no member has it: %w", b.ID, publish.ErrNotFound)
}

// openLocalLog opens a log of this node's log directory.
func (s *Source) openLocalLog(ctx context.Context, drvBase string, offset int64, follow bool) (io.ReadCloser, int64, error) {
	if s.cfg.Logs == nil {
		return nil, 0, fmt.Errorf("log of %s: no log directory here: %w", drvBase, publish.ErrNotFound)
	}
	rc, start, err := s.cfg.Logs.Open(ctx, drvBase, offset, follow)
	if errors.Is(err, buildlog.ErrNotFound) {
		err = fmt.Errorf("%w: %w", publish.ErrNotFound, err)
	}
	return rc, start, err
}

// logPeers lists the members that may hold the log of b's latest attempt,
// most likely first, this node included: the node it is allocated to while
// it is; else the node of its latest attempt, the holders of its outputs
// (the builder is one of them after a success) and the other active
// members. None if b was never allocated: an unknown log costs no traffic.
func (s *Source) logPeers(b scheduler.BuildInfo) []string {
	if active(b) {
		return []string{b.Node}
	}
	if b.LastNode == "" {
		return nil
	}
	peers := []string{b.LastNode}
	s.cfg.FSM.Read(func(st *scheduler.State) {
		for _, o := range b.Outputs {
			if it, ok := st.Item(o.Path); ok {
				peers = append(peers, it.Holders...)
			}
		}
		for _, m := range st.Members() {
			if m.Status == "active" {
				peers = append(peers, m.ID)
			}
		}
	})
	var out []string
	for _, p := range peers {
		if p != "" && !slices.Contains(out, p) && len(out) < maxLogPeers {
			out = append(out, p)
		}
	}
	return out
}

// followedLog follows the log of build b: it opens it at its first Read if
// it did not exist yet (then of the build's attempt at that time), and at
// the log's end waits for the replica to show that the attempt ended, so
// that a reader that saw io.EOF finds it ended.
type followedLog struct {
	s      *Source
	ctx    context.Context
	b      scheduler.BuildInfo // as it was when the log was asked for
	offset int64               // where to open a log that did not exist yet
	rc     io.ReadCloser       // nil until the log exists
}

func (f *followedLog) Read(p []byte) (int, error) {
	if f.rc == nil {
		if err := f.open(); err != nil {
			return 0, err
		}
	}
	n, err := f.rc.Read(p)
	if errors.Is(err, io.EOF) {
		f.waitEnded()
	}
	return n, err
}

// open waits until the build's log exists and opens it; io.EOF if the build
// ended, or was forgotten, without one.
func (f *followedLog) open() error {
	sub := f.s.cfg.FSM.Changes()
	defer sub.Close()
	retry := time.NewTicker(logRetry)
	defer retry.Stop()
	for {
		b, ok := f.s.build(f.b.ID)
		if !ok {
			return io.EOF
		}
		rc, _, err := f.s.openBuildLog(f.ctx, b, f.offset, true)
		if err == nil {
			f.b, f.rc = b, rc // the attempt whose end waitEnded waits for
			return nil
		}
		if f.ctx.Err() != nil {
			return f.ctx.Err()
		}
		if b.State.Done() {
			return io.EOF // ended without a log
		}
		select {
		case <-f.ctx.Done():
			return f.ctx.Err()
		case <-sub.C:
		case <-retry.C:
		}
	}
}

// waitEnded waits, at most endWait, until the replica no longer shows the
// attempt that was followed as allocated or running.
func (f *followedLog) waitEnded() {
	sub := f.s.cfg.FSM.Changes()
	defer sub.Close()
	timeout := time.NewTimer(endWait)
	defer timeout.Stop()
	for {
		if b, ok := f.s.build(f.b.ID); !ok || !sameAttempt(b, f.b) {
			return
		}
		select {
		case <-f.ctx.Done():
			return
		case <-timeout.C:
			return
		case <-sub.C:
		}
	}
}

// sameAttempt reports whether now still shows the active attempt of was.
func sameAttempt(now, was scheduler.BuildInfo) bool {
	return active(now) && now.Node == was.Node && now.Attempt == was.Attempt
}

func (f *followedLog) Close() error {
	if f.rc == nil {
		return nil
	}
	return f.rc.Close()
}
