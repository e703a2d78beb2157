package mesh

import (
	"fmt"
	"testing"
	"time"
)

// TestFollowersApplyWithoutCommitTimeout checks that a follower applies the
// leader's last command at once, not when CommitTimeout (here a minute)
// next sends an empty AppendEntries: what makes a follower's agent see its
// allocation without waiting.
func TestFollowersApplyWithoutCommitTimeout(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) { cfg.Timing.CommitTimeout = time.Minute })
	waitFor(t, 20*time.Second, "3 voters", func() error { return c.agreed(3, 3) })
	l := c.leader()
	for i := range 3 {
		cmd := fmt.Sprintf("last-%d", i)
		apply(t, l, cmd)
		waitFor(t, 10*time.Second, "every follower applies "+cmd, func() error {
			for _, n := range c.live() {
				if n.fsm.indexOf(cmd) == 0 {
					return fmt.Errorf("%s has not applied %s", n.ID(), cmd)
				}
			}
			return nil
		})
	}
}
