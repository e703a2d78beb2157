package node

import (
	"context"
	"time"

	"github.com/tbfg/tbfg-node/node/buildlog"
	"github.com/tbfg/tbfg-node/scheduler"
)

// logPruneInterval is how often the build logs are checked against
// --log-max-age and --log-max-size.
const logPruneInterval = 10 * time.Minute

// failedLogFactor is how much longer than --log-max-age a failed build's
// log is kept: it is the one a user comes back to.
const failedLogFactor = 4

// startLogRetention runs the loop that removes the build logs past
// --log-max-age (failed builds': four times that) or beyond --log-max-size,
// oldest first, successful builds' before failed ones'. It waits until
// this node is registered in its replica, which has then caught up enough
// to tell failed builds from successful ones.
func (n *Node) startLogRetention() {
	n.loops.Go("log retention", n.members.Registered(), func(ctx context.Context) error {
		t := time.NewTicker(logPruneInterval)
		defer t.Stop()
		for {
			n.pruneLogs()
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	})
}

// pruneLogs removes what retention no longer keeps.
func (n *Node) pruneLogs() {
	removed, err := n.logs.Prune(time.Now(), n.logRetention())
	if err != nil {
		n.log.Warn("build log retention", "err", err)
	}
	if removed > 0 {
		n.log.Info("removed build logs by retention", "logs", removed)
	}
}

// logRetention is the node's retention policy for build logs.
func (n *Node) logRetention() buildlog.Retention {
	return buildlog.Retention{
		MaxAge: n.cfg.LogMaxAge, FailedMaxAge: failedLogFactor * n.cfg.LogMaxAge, MaxSize: n.cfg.LogMaxSize,
		Failed: func(drvBase string) bool {
			var failed bool
			n.fsm.Read(func(s *scheduler.State) {
				b, ok := s.BuildByDrv(n.cfg.StoreDir + "/" + drvBase)
				failed = ok && (b.State == scheduler.BuildFailed || b.State == scheduler.BuildCanceled)
			})
			return failed
		},
	}
}
