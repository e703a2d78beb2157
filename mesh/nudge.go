package mesh

// Followers learn that an entry is committed from the leader's next
// AppendEntries, which hashicorp/raft sends when new entries arrive or when
// CommitTimeout passes without any (50–100 ms with DefaultTiming). The last
// command of a burst, such as the allocation of a dependent build, thus
// reaches the followers' state machines up to CommitTimeout after the
// leader committed it, and a follower's agent starts that build late: the
// wait behind the runs where a chain of builds lands on a follower.
//
// So after each command the leader commits, it appends a barrier (an entry
// the state machine never sees), whose replication carries the new commit
// index to every follower at once. Commits that come while a barrier is in
// flight share the next one, and none is appended while other entries are
// in flight, so a burst of commands costs about one extra entry, not one
// each.

// nudge asks for a barrier after the commit of a command; it never blocks.
func (rn *raftNode) nudge() {
	select {
	case rn.nudges <- struct{}{}:
	default: // one pending barrier covers every commit before it
	}
}

// nudgeLoop appends the barriers nudge asks for, one at a time, until
// Raft has stopped.
func (rn *raftNode) nudgeLoop() {
	defer close(rn.nudged)
	for {
		select {
		case <-rn.quit:
			return
		case <-rn.nudges:
			// Entries still in flight need no barrier now: the command
			// among them nudges again once committed, and that barrier
			// carries every commit before it.
			if rn.r.LastIndex() > rn.r.CommitIndex() {
				continue
			}
			// A barrier that fails (leadership lost, shutdown) leaves
			// nothing to tell: the next leader's entries carry the index.
			_ = rn.await(rn.r.Barrier(rpcTimeout))
		}
	}
}
