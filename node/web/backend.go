package web

import (
	"context"
	"errors"
	"io"

	"github.com/tbfg/tbfg-node/node/adminapi"
	"github.com/tbfg/tbfg-node/scheduler"
)

// Backend is what the server reads from the node besides its replica of the
// build queue. The node implements it; webtest has an in-memory one.
// Methods return errors wrapping ErrNotFound or ErrUnavailable where those
// apply, and never a secret: what they return is shown to any local client.
type Backend interface {
	// Status is this node's status, the object of the admin API's
	// GET /v1/status.
	Status(ctx context.Context) (adminapi.Status, error)
	// Nodes lists the mesh members, the objects of the admin API's
	// GET /v1/nodes.
	Nodes(ctx context.Context) ([]adminapi.NodeView, error)
	// Raft is this node's place in the Raft cluster, for /readyz.
	Raft() RaftInfo
	// OpenLog opens the log of build id, from whichever member holds it,
	// and returns the offset in the whole log of the first byte it reads.
	// An unknown build, or one without a log yet, is ErrNotFound. The
	// reader's Read returns once ctx ends, even while it follows.
	OpenLog(ctx context.Context, id uint64, opts LogOptions) (rc io.ReadCloser, start int64, err error)
	// Timeline is the timeline of attempt attempt of build id as this
	// node's own clock stamped it, when this node ran that attempt; ok is
	// false otherwise (another node ran it, or it is too old to be kept).
	Timeline(id uint64, attempt int) (tl adminapi.Timeline, ok bool)
}

// RaftInfo is what /readyz needs to know about Raft.
type RaftInfo struct {
	// Member is true while this node is in the Raft configuration.
	Member bool
	// Leader is the leader's peer ID, "" while none is known.
	Leader string
	// CommitIndex is the highest log index this node knows is committed.
	CommitIndex uint64
}

// LogOptions says which part of a build log to read.
type LogOptions struct {
	// Offset is the first byte to read; a negative offset counts from the
	// end of what is written so far (-4096: the last 4 KiB).
	Offset int64
	// Follow keeps reading while the build runs: Read waits for more, and
	// returns io.EOF once the build has ended and the whole log was read.
	// Without it, Read returns io.EOF at the end of what is written so far.
	Follow bool
}

// Replica is this node's copy of the replicated build queue; a
// *scheduler.FSM implements it.
type Replica interface {
	// Read calls fn with the state under a read lock.
	Read(fn func(*scheduler.State))
	// Index is the Raft index of the last entry applied.
	Index() uint64
	// WaitIndex returns once the entry at index is applied, or ctx's error.
	WaitIndex(ctx context.Context, index uint64) error
	// Changes wakes the subscriber after applied commands.
	Changes() *scheduler.Subscription
	// ChangesSince returns what the commands after seq changed.
	ChangesSince(seq uint64) ([]scheduler.Change, bool)
	// LastChange is the Seq of the latest change.
	LastChange() uint64
}

var _ Replica = (*scheduler.FSM)(nil)

// Errors a Backend returns (wrapped) and the server maps to HTTP statuses.
var (
	// ErrNotFound means the build or log asked for does not exist: 404.
	ErrNotFound = errors.New("not found")
	// ErrUnavailable means the node cannot answer now (starting, stopping,
	// the holder of a log unreachable): 503.
	ErrUnavailable = errors.New("unavailable")
)
