package mesh

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestApplyIndexedNamesTheCommittingIndex checks that the index returned to
// a follower is the one every replica applies the command at, so that a read
// waiting for it sees the write.
func TestApplyIndexedNamesTheCommittingIndex(t *testing.T) {
	c := newCluster(t, 2, nil)
	waitFor(t, 10*time.Second, "2 nodes", func() error { return c.agreed(2, 1) })
	f, l := c.follower(), c.leader()
	ctx, cancel := context.WithTimeout(context.Background(), scale(5*time.Second))
	defer cancel()
	var last uint64
	for _, n := range []*testNode{f, l, f} {
		cmd := fmt.Sprintf("cmd-%d", last)
		_, idx, err := n.ApplyIndexed(ctx, []byte(cmd))
		if err != nil {
			t.Fatalf("apply %s: %v", cmd, err)
		}
		if idx <= last {
			t.Fatalf("apply %s: index %d, want above %d", cmd, idx, last)
		}
		if got := l.fsm.indexOf(cmd); got != idx {
			t.Fatalf("apply %s: returned index %d, leader applied it at %d", cmd, idx, got)
		}
		waitFor(t, 5*time.Second, "follower applies "+cmd, func() error {
			if got := f.fsm.indexOf(cmd); got != idx {
				return fmt.Errorf("follower has %s at %d, want %d", cmd, got, idx)
			}
			return nil
		})
		last = idx
	}
	_, idx, err := f.ApplyIndexed(ctx, []byte("fail-indexed"))
	var fe *FSMError
	if !errors.As(err, &fe) || idx <= last {
		t.Fatalf("failing command: index %d, err %v; want *FSMError at an index above %d", idx, err, last)
	}
}
