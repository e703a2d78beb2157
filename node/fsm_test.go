package node

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/tbfg/tbfg-node/scheduler"
)

func TestEmptySnapshotResetsState(t *testing.T) {
	f := resettableFSM{scheduler.NewFSM(discard())}
	apply := &scheduler.LocalApplier{FSM: f.FSM}
	join := &scheduler.NodeJoined{Node: "n1", Systems: []string{"x86_64-linux"}, MaxBuilds: 1}
	if _, err := apply.Apply(context.Background(), scheduler.Encode(join)); err != nil {
		t.Fatal(err)
	}
	if err := f.Restore(io.NopCloser(strings.NewReader(""))); err != nil {
		t.Fatalf("restore of an empty snapshot: %v", err)
	}
	f.Read(func(s *scheduler.State) {
		if len(s.Members()) != 0 {
			t.Errorf("members after reset: %+v", s.Members())
		}
	})
	if err := f.Restore(io.NopCloser(strings.NewReader("junk"))); err == nil {
		t.Error("restore of a malformed snapshot succeeded")
	}
}
