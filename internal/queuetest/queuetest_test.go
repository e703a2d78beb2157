package queuetest

import (
	"context"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/scheduler"
)

func TestJoinAndWait(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := NewClock(start)
	q := New(t, clock.Now)
	q.Join(t, "A", "key-A", 2)
	clock.Add(time.Minute)
	done := make(chan struct{})
	go func() { // another member's commit, seen through the FSM's changes
		defer close(done)
		cmd := &scheduler.NodeJoined{Time: clock.Now(), Node: "B", Key: "key-B", Systems: []string{"x86_64-linux"}, MaxBuilds: 1}
		if _, err := q.Applier.Apply(context.Background(), scheduler.Encode(cmd)); err != nil {
			t.Error(err)
		}
	}()
	var members []scheduler.MemberInfo
	q.WaitFor(t, "two members", func(s *scheduler.State) bool {
		members = s.Members()
		return len(members) == 2
	})
	<-done
	if m := members[0]; m.ID != "A" || m.Key != "key-A" || m.MaxBuilds != 2 || !m.Joined.Equal(start) || m.Status != "active" {
		t.Errorf("first member %+v", m)
	}
	if m := members[1]; m.ID != "B" || !m.Joined.Equal(start.Add(time.Minute)) {
		t.Errorf("second member %+v, want joined a minute later", m)
	}
}
