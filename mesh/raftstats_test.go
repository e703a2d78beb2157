package mesh

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestRaftStatsAndWatchMembers: a second node joining wakes a member
// watcher on the first; the leader and the follower report their Raft
// figures; Close closes the watch.
func TestRaftStatsAndWatchMembers(t *testing.T) {
	c := newCluster(t, 1, nil)
	first := c.nodes[0]
	waitFor(t, 15*time.Second, "a leader", func() error { return c.agreed(1, 1) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watch := first.WatchMembers(ctx)
	drain(watch) // the change to the first configuration, if the loop saw it
	c.add()
	waitFor(t, 15*time.Second, "2 members", func() error {
		if n := len(first.Members()); n != 2 {
			return fmt.Errorf("%d members", n)
		}
		return nil
	})
	select {
	case <-watch:
	case <-time.After(scale(10 * time.Second)):
		t.Fatal("no member change seen after a join")
	}
	apply(t, first, "x")
	waitFor(t, 15*time.Second, "Raft figures", func() error {
		// Looked up on each try: right after a join the follower may not
		// know the leader yet, and a busy machine may move the leadership.
		leader, follower := c.leader(), c.follower()
		if leader == nil || follower == nil {
			return fmt.Errorf("leader %v, follower %v", leader != nil, follower != nil)
		}
		ls, fs := leader.RaftStats(), follower.RaftStats()
		switch {
		case !ls.Leader || !ls.Member || ls.LeaderID != leader.ID() || ls.CommitIndex == 0:
			return fmt.Errorf("leader reports %+v", ls)
		case fs.Leader || !fs.Member || fs.LeaderID != leader.ID() || fs.CommitIndex != ls.CommitIndex:
			return fmt.Errorf("follower reports %+v, leader %+v", fs, ls)
		}
		return nil
	})
	first.Close()
	deadline := time.After(scale(10 * time.Second))
	for {
		select {
		case _, ok := <-watch:
			if !ok {
				if st := first.RaftStats(); st != (RaftStats{}) {
					t.Errorf("a closed mesh reports %+v", st)
				}
				return
			}
		case <-deadline:
			t.Fatal("Close did not close the member watch")
		}
	}
}

func drain(ch <-chan struct{}) {
	select {
	case <-ch:
	default:
	}
}
