package meshsource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/tbfg/tbfg-node/scheduler"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/substitutes/publish"
)

// maxLogPeers bounds how many members one log request asks.
const maxLogPeers = 16

// remoteLog asks other members for the log of the derivation drvBase, which
// is not in this node's log directory. The state does not record which node
// ran a finished build, so it asks, in turn, the node the build is allocated
// to, the holders of its outputs (the builder is one of them after a
// success), then the other active members (a failed build's log is only on
// the node that ran it). Only derivations the state has an allocated build of
// are asked for: an unknown name costs no traffic.
func (s *Source) remoteLog(ctx context.Context, drvBase string) (io.ReadCloser, error) {
	lr, ok := s.cfg.Remote.(LogRemote)
	if !ok {
		return nil, fmt.Errorf("log of %s: %w", drvBase, publish.ErrNotFound)
	}
	drv, err := s.dir.Join(drvBase)
	if err != nil {
		return nil, fmt.Errorf("log of %q: %w: %w", drvBase, publish.ErrNotFound, err)
	}
	var errs []error
	for _, peer := range s.logPeers(drv) {
		rc, err := lr.OpenLog(ctx, peer, drv)
		if err == nil {
			return rc, nil
		}
		if !errors.Is(err, publish.ErrNotFound) {
			s.cfg.Logger.Debug("member failed to send a build log", "drv", drv, "peer", peer, "err", err)
			errs = append(errs, err)
		}
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("log of %s: %w", drvBase, errors.Join(errs...))
	}
	return nil, fmt.Errorf("log of %s: no member has it: %w", drvBase, publish.ErrNotFound)
}

// logPeers lists the members that may hold the log of drv, most likely
// first, without this node; none if no build of drv was ever allocated.
func (s *Source) logPeers(drv store.Path) []string {
	var peers []string
	s.cfg.FSM.Read(func(st *scheduler.State) {
		b, ok := st.BuildByDrv(string(drv))
		if !ok || b.Allocated.IsZero() && b.Started.IsZero() {
			return
		}
		peers = append(peers, b.Node)
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
		if p != "" && p != s.cfg.Self && !slices.Contains(out, p) && len(out) < maxLogPeers {
			out = append(out, p)
		}
	}
	return out
}
