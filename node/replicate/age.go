package replicate

import "time"

// ages remembers, for each path this node saw under-replicated in its last
// look at the state, since when it has seen it so with the same number of
// holders. It holds entries only for the paths of the last look: end drops
// the others, so it never outgrows the state's under-replicated items. Run's
// goroutine only.
type ages struct {
	paths map[string]age
	look  uint64 // the current look, to tell which entries it saw
}

// age is what ages knows of one path.
type age struct {
	since   time.Time // first seen under-replicated with holders holders
	holders int
	look    uint64 // the last look that saw the path
}

// begin starts a look at the state.
func (a *ages) begin() {
	if a.paths == nil {
		a.paths = map[string]age{}
	}
	a.look++
}

// see records that the look found path under-replicated with holders
// active holders at now, and returns for how long it has been so. A change
// in the number of holders starts the count again: a copy was made (or a
// holder lost), so the ranking moved on and its first choice deserves
// time of its own.
func (a *ages) see(path string, holders int, now time.Time) time.Duration {
	e, ok := a.paths[path]
	if !ok || e.holders != holders {
		e = age{since: now, holders: holders}
	}
	e.look = a.look
	a.paths[path] = e
	return now.Sub(e.since)
}

// end finishes a look: it forgets the paths the look did not see, which are
// fully held again, no longer available, or gone from the state.
func (a *ages) end() {
	for p, e := range a.paths {
		if e.look != a.look {
			delete(a.paths, p)
		}
	}
}
