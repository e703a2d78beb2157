package node

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tbfg/tbfg-node/node/adminapi"
	"github.com/tbfg/tbfg-node/scheduler"
)

// Reads that follow writes. A command committed through the leader is
// applied by this node's replica a little later; the admin API's reads wait
// for the Raft index a write answered (adminapi.ReadAt), and clients that
// follow builds ask for the changes after a cursor instead of polling.

// submitSettle bounds how long Submit waits for the replica to apply the
// submission before it answers with the builds' states.
const submitSettle = 5 * time.Second

// maxChangedBuilds bounds the build ids of one Changes answer; past it the
// answer is a Reset, and the client reads what it follows again.
const maxChangedBuilds = 10000

// Index is the Raft index of the last command the replica applied.
func (n *Node) Index() uint64 { return n.fsm.Index() }

// WaitIndex returns once the replica has applied index, or an error
// wrapping scheduler.ErrIndexWait when ctx ends first.
func (n *Node) WaitIndex(ctx context.Context, index uint64) error {
	return n.fsm.WaitIndex(ctx, index)
}

// waitApplied waits, at most submitSettle, until the replica has applied
// index; the caller reads what it can either way.
func (n *Node) waitApplied(ctx context.Context, index uint64) {
	ctx, cancel := context.WithTimeout(ctx, submitSettle)
	defer cancel()
	_ = n.fsm.WaitIndex(ctx, index)
}

// Changes answers the builds that changed after cursor, waiting until some
// did or ctx ends (then with none, and the same cursor).
func (n *Node) Changes(ctx context.Context, cursor string) (adminapi.Changes, error) {
	if !n.running() {
		return adminapi.Changes{}, n.notReady()
	}
	return waitChanges(ctx, n.fsm, cursor), nil
}

// waitChanges is changesAfter once it lists a change, or when ctx ends.
func waitChanges(ctx context.Context, f *scheduler.FSM, cursor string) adminapi.Changes {
	sub := f.Changes() // before the first look: no change in between is missed
	defer sub.Close()
	for {
		ch := changesAfter(f, cursor)
		if ch.Reset || len(ch.Builds) > 0 {
			return ch
		}
		select {
		case <-sub.C:
		case <-ctx.Done():
			return ch
		}
	}
}

// changeFeed is the part of the FSM that changesAfter reads.
type changeFeed interface {
	ChangesSince(seq uint64) ([]scheduler.Change, bool)
	LastChange() uint64
	Index() uint64
}

// changesAfter lists the builds that changed after cursor.
//
// A cursor is "INDEX-SEQ": the Seq of the last change an answer listed
// (each FSM numbers its changes from 1) and that change's Raft index. It
// is valid for an FSM whose change Seq has that index. Every replica
// applies the same Raft log, so where that holds the two have applied the
// log to the same entry, and their changes after it are the same: the FSM
// that made the cursor, the node's after a restart that replayed the log,
// another node's if its numbering happens to agree. Where it does not (a
// replica that started from a snapshot, a cursor older than the changes
// the FSM keeps, "") the answer is a Reset. Raft indices alone would not
// do: a snapshot that a replica installs does not move its index, so the
// changes after an index would miss what the snapshot brought; the Reset
// change of the restore has a Seq of its own.
func changesAfter(f changeFeed, cursor string) adminapi.Changes {
	changes, last, ok := sinceCursor(f, cursor)
	ch := adminapi.Changes{Reset: !ok, Builds: []uint64{}}
	seen := map[scheduler.BuildID]bool{}
	for _, c := range changes {
		last = c
		ch.Reset = ch.Reset || c.Reset
		for _, id := range c.Builds {
			if !seen[id] {
				seen[id] = true
				ch.Builds = append(ch.Builds, uint64(id))
			}
		}
	}
	if !ok {
		last = latestChange(f)
	}
	if ch.Reset || len(ch.Builds) > maxChangedBuilds {
		ch.Reset, ch.Builds = true, []uint64{}
	}
	slices.Sort(ch.Builds)
	ch.Cursor = fmt.Sprintf("%d-%d", last.Index, last.Seq)
	ch.Index = f.Index() // after the changes were read: at least as new
	return ch
}

// sinceCursor returns the changes after cursor and the change it names,
// or false if cursor is not valid for f.
func sinceCursor(f changeFeed, cursor string) ([]scheduler.Change, scheduler.Change, bool) {
	index, seq, ok := parseCursor(cursor)
	if !ok {
		return nil, scheduler.Change{}, false
	}
	if seq == 0 { // before the FSM's first change
		changes, complete := f.ChangesSince(0)
		return changes, scheduler.Change{}, complete && index == 0
	}
	changes, complete := f.ChangesSince(seq - 1)
	if !complete || len(changes) == 0 || changes[0].Seq != seq || changes[0].Index != index {
		return nil, scheduler.Change{}, false
	}
	return changes[1:], changes[0], true
}

// latestChange is f's last change; the zero Change if none.
func latestChange(f changeFeed) scheduler.Change {
	last := f.LastChange()
	if last == 0 {
		return scheduler.Change{}
	}
	tail, _ := f.ChangesSince(last - 1)
	if len(tail) == 0 {
		return scheduler.Change{}
	}
	return tail[len(tail)-1]
}

// parseCursor reads "INDEX-SEQ".
func parseCursor(s string) (index, seq uint64, ok bool) {
	a, b, found := strings.Cut(s, "-")
	if !found {
		return 0, 0, false
	}
	index, err1 := strconv.ParseUint(a, 10, 64)
	seq, err2 := strconv.ParseUint(b, 10, 64)
	return index, seq, err1 == nil && err2 == nil
}
