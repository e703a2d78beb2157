package raftlog

import (
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// A rule says how one of Raft's messages is logged: at which level, and
// whether repeats are limited to one record per window.
type rule struct {
	level   hclog.Level
	limited bool
}

// rules lists the messages Raft repeats several times a second while a peer
// is unreachable or this node is cut off (every failed heartbeat, every
// round of pre-votes, every vote refused because a leader exists). They are
// expected in a mesh where machines come and go, so failed RPCs are warnings,
// refusals are debug records, and each is printed at most once per window
// and peer; the next printed record says how many were suppressed. Errors
// of streams that a peer or this node's shutdown reset (accept, decode,
// flush) are debug records too, and a replication stopped by a newer term
// (an election elsewhere) is news, not an error.
var rules = map[string]rule{
	"failed to make requestVote RPC":                                {hclog.Warn, true},
	"failed to heartbeat to":                                        {hclog.Warn, true},
	"failed to appendEntries to":                                    {hclog.Warn, true},
	"failed to pipeline appendEntries":                              {hclog.Warn, true},
	"failed to start pipeline replication to":                       {hclog.Warn, true},
	"failed to contact":                                             {hclog.Warn, true},
	"heartbeat timeout reached, starting election":                  {hclog.Warn, true},
	"Election timeout reached, restarting election":                 {hclog.Info, true},
	"failed to decode incoming command":                             {hclog.Debug, false},
	"peer has newer term, stopping replication":                     {hclog.Info, false},
	"failed to accept connection":                                   {hclog.Debug, false},
	"failed to flush response":                                      {hclog.Debug, false},
	"rejecting vote request since we have a leader":                 {hclog.Debug, false},
	"rejecting pre-vote request since we have a leader":             {hclog.Debug, false},
	"rejecting vote request since node is not in configuration":     {hclog.Debug, false},
	"rejecting pre-vote request since node is not in configuration": {hclog.Debug, false},
}

// Window is how long a limited message stays quiet for one peer after it
// was printed.
const Window = 10 * time.Second

// maxKeys bounds the limiter's memory; older keys are dropped beyond it.
const maxKeys = 1024

// limiter counts the repeats of limited messages, shared by a logger and
// every logger derived from it.
type limiter struct {
	mu   sync.Mutex
	now  func() time.Time
	seen map[string]*repeat
}

type repeat struct {
	printed    time.Time
	suppressed int
}

func newLimiter() *limiter {
	return &limiter{now: time.Now, seen: map[string]*repeat{}}
}

// allow reports whether the record with key may be printed now, and how
// many records with that key were suppressed since the last one printed.
func (l *limiter) allow(key string) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	r := l.seen[key]
	if r != nil && now.Sub(r.printed) < Window {
		r.suppressed++
		return false, 0
	}
	if r == nil {
		l.evict(now)
		r = &repeat{}
		l.seen[key] = r
	}
	n := r.suppressed
	r.printed, r.suppressed = now, 0
	return true, n
}

// evict drops quiet keys once the map is full.
func (l *limiter) evict(now time.Time) {
	if len(l.seen) < maxKeys {
		return
	}
	for k, r := range l.seen {
		if now.Sub(r.printed) >= Window || len(l.seen) >= maxKeys {
			delete(l.seen, k)
		}
	}
}

// limitKey names a message and the peer it is about, so that one
// unreachable peer does not silence the news about another.
func limitKey(msg string, args []any) string {
	for i := 0; i+1 < len(args); i += 2 {
		switch args[i] {
		case "peer", "target", "server-id", "id":
			return msg + "\x00" + fmt.Sprint(args[i+1])
		}
	}
	return msg
}
