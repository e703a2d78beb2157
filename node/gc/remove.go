package gc

import (
	"context"
	"fmt"

	"github.com/tbfg/tbfg-node/scheduler"
	"github.com/tbfg/tbfg-node/store"
)

// remove commits the recorded items of rs as no longer held by this node,
// then removes from the store those of rs that no unfinished build needs
// by now, in order, and returns them. If the commit fails nothing goes.
func (c *Collector) remove(ctx context.Context, rs []Removal) ([]Removal, error) {
	var recorded []string
	for _, r := range rs {
		if r.Recorded {
			recorded = append(recorded, r.Path)
		}
	}
	// Nothing goes when the commit failed: it may not have been applied,
	// and an unrecorded item may be a reference of a recorded one.
	if len(recorded) > 0 {
		if err := c.commit(ctx, recorded); err != nil {
			return nil, err
		}
	}
	rs = c.stillUnneeded(rs)
	paths := make([]store.Path, len(rs))
	for i, r := range rs {
		paths[i] = store.Path(r.Path)
	}
	// One item at a time, in order: referrers go before what they refer
	// to, and a failure keeps what is left valid.
	for i, p := range paths {
		if _, err := c.cfg.Store.Remove(ctx, p); err != nil {
			return rs[:i], fmt.Errorf("remove %s: %w", p, err)
		}
		c.cfg.Logger.Info("removed from the store", "path", p, "size", rs[i].Size, "class", rs[i].Class.String())
		if c.cfg.Removed != nil {
			c.cfg.Removed(rs[i])
		}
	}
	return rs, nil
}

// commit records that this node no longer holds paths.
func (c *Collector) commit(ctx context.Context, paths []string) error {
	cmd := scheduler.Encode(&scheduler.HolderRemoved{Time: c.cfg.Now(), Node: c.cfg.Node, Paths: paths})
	cctx, cancel := context.WithTimeout(ctx, c.cfg.CommitTimeout)
	defer cancel()
	if _, err := c.cfg.Applier.Apply(cctx, cmd); err != nil {
		return fmt.Errorf("commit no longer held: %w", err)
	}
	return nil
}

// stillUnneeded drops from rs the items that an unfinished build needs by
// now (one submitted or allocated while the collector chose), and every
// item after the first one dropped: what follows may be a reference of it.
func (c *Collector) stillUnneeded(rs []Removal) []Removal {
	paths := make([]string, len(rs))
	for i, r := range rs {
		paths[i] = r.Path
	}
	var hs []scheduler.Holding
	c.cfg.FSM.Read(func(s *scheduler.State) { hs = s.Holdings(c.cfg.Node, paths) })
	for i, h := range hs {
		if h.Needed {
			return rs[:i]
		}
	}
	return rs
}
