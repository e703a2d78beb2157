package replicate

import (
	"fmt"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/scheduler"
)

// BenchmarkPickBacklog measures one look at a state whose 100,000 items
// all need a copy, as after the loss of a big node: pick visits every one
// of them to keep its age. Two references are measured in the same run: a
// look that stops at the first full batch, as pick did before it kept
// ages, and one plain pass of UnderReplicated over the whole state, what
// any look cost a node chosen for nothing. x-faster-than-first-batch and
// x-faster-than-full-pass are each reference's time over the look's (below 1:
// the look is slower).
func BenchmarkPickBacklog(b *testing.B) {
	r := benchBacklog(b)
	now := time.Now()
	b.ResetTimer()
	var look, first, pass time.Duration
	for range b.N {
		start := time.Now()
		if got := r.pick(now); len(got) != DefaultBatch {
			b.Fatalf("picked %d items, want a full batch", len(got))
		}
		look += time.Since(start)
		start = time.Now()
		firstBatch(r)
		first += time.Since(start)
		start = time.Now()
		r.cfg.FSM.Read(func(s *scheduler.State) {
			s.UnderReplicated(r.cfg.Copies, 0, func(scheduler.ItemInfo) bool { return false })
		})
		pass += time.Since(start)
	}
	b.ReportMetric(look.Seconds()*1e3/float64(b.N), "ms/look")
	b.ReportMetric(first.Seconds()/look.Seconds(), "x-faster-than-first-batch")
	b.ReportMetric(pass.Seconds()/look.Seconds(), "x-faster-than-full-pass")
	b.ReportMetric(float64(len(r.ages.paths)), "ages")
}

// benchBacklog returns the replicator of B in a mesh of five where A holds
// 100,000 items and no one else does.
func benchBacklog(b *testing.B) *Replicator {
	m := newMesh(b, "A", "B", "C", "D", "E")
	items := make([]scheduler.Item, 100000)
	for i := range items {
		items[i] = item(fmt.Sprintf("backlog-%d", i))
	}
	m.hold(b, "A", items...)
	r, err := New(Config{Node: "B", FSM: m.FSM, Applier: m.Applier, Fetcher: &fetcher{}})
	if err != nil {
		b.Fatal(err)
	}
	return r
}

// firstBatch lists the first batch of items r is a target for, stopping
// there, without ages.
func firstBatch(r *Replicator) {
	r.cfg.FSM.Read(func(s *scheduler.State) {
		rk := newRanking(activeMembers(s))
		s.UnderReplicated(r.cfg.Copies, r.cfg.Batch, func(it scheduler.ItemInfo) bool {
			return rk.position(r.cfg.Node, it.Path, it.Holders, 1) == 0
		})
	})
}
