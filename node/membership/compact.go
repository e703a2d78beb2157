package membership

import (
	"context"
	"fmt"
	"time"

	"github.com/tbfg/tbfg-node/scheduler"
)

// DefaultCompactEvery is how often the leader looks for finished builds
// older than the history to drop from the replicated state.
const DefaultCompactEvery = time.Hour

// compactLoop, run on the leader, drops finished builds older than History
// from the replicated state at start and then every CompactEvery. The leader
// stamps the cutoff into each Compact command, so every node drops the same
// builds whatever its own clock says.
func (m *Membership) compactLoop(ctx context.Context, tick <-chan time.Time) error {
	for {
		if err := m.Compact(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("compact the build history", "err", err) // tried again on the next tick
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
		}
	}
}

// Compact commits Compact commands, of at most scheduler.CompactBatch builds
// each, until no finished build older than History is left that can go. It
// does nothing when History is 0, or while a member does not read the
// replicated format of scheduler.TypeCompact: an older member would stop at
// it (see scheduler's DESIGN.md, "Upgrades").
func (m *Membership) Compact(ctx context.Context) error {
	if m.cfg.History <= 0 {
		return nil
	}
	need := scheduler.TypeFormat(scheduler.TypeCompact)
	if mf := m.MeshFormat(); mf < need {
		m.log.Debug("not compacting: a member reads only older replicated formats", "mesh_format", mf, "needs", need)
		return nil
	}
	total := 0
	for {
		now := m.cfg.Now()
		before := now.Add(-m.cfg.History)
		var due []scheduler.BuildID
		var format int
		m.cfg.FSM.Read(func(s *scheduler.State) { due, format = s.Compactable(before, 1), s.Format() })
		// The first Compact also raises the state to its format, from which
		// snapshots keep the applied index: commit one even with nothing due.
		if len(due) == 0 && format >= need {
			break
		}
		n, err := m.commitCompact(ctx, now, before)
		if err != nil {
			return err
		}
		total += n
		if n < scheduler.CompactBatch {
			break
		}
	}
	if total > 0 {
		m.log.Info("compacted the build history", "builds", total, "history", m.cfg.History)
	}
	return nil
}

// commitCompact commits one Compact and returns how many builds it dropped.
func (m *Membership) commitCompact(ctx context.Context, now, before time.Time) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, applyTimeout)
	defer cancel()
	resp, err := m.cfg.Mesh.Apply(ctx, scheduler.Encode(&scheduler.Compact{Time: now, Before: before,
		Max: scheduler.CompactBatch}))
	if err != nil {
		return 0, fmt.Errorf("commit compact before %s: %w", before.UTC().Format(time.RFC3339), err)
	}
	n, err := scheduler.DecodeCompactResponse(resp)
	if err != nil {
		return 0, fmt.Errorf("compact response: %w", err)
	}
	return n, nil
}
