package adminapi

import "errors"

// Errors of the admin API, on both sides of the socket. Each has a kind
// that travels in error answers, so that Client returns errors matching
// the sentinel the node's Backend returned.
var (
	// ErrNotRunning is returned by Client when no node answers on the socket.
	ErrNotRunning = errors.New("no node is running")
	// ErrUnavailable is returned by a Backend, and then by Client, when the
	// node is starting or stopping and cannot answer yet; the API answers
	// 503.
	ErrUnavailable = errors.New("node not ready")
	// ErrBadRequest wraps errors in what a client asked for, such as a
	// derivation that does not check out; the API answers 400.
	ErrBadRequest = errors.New("bad request")
	// ErrNoBuild is returned for a build id the state does not know; the
	// API answers 404.
	ErrNoBuild = errors.New("no such build")
	// ErrNoLog is returned for a build that has no log (yet): it has not
	// started, or no member that holds its log answers; the API answers
	// 404.
	ErrNoLog = errors.New("no log")
	// ErrIndexWait is returned when the node's replica did not apply the
	// Raft index a read waits for (ReadAt) in time: the replica trails the
	// leader. The API answers 503.
	ErrIndexWait = errors.New("raft index not applied in time")
)

// errorKinds names each sentinel in error answers.
var errorKinds = []struct {
	kind string
	err  error
}{
	{"index-wait", ErrIndexWait}, // before unavailable: a wait may wrap both
	{"unavailable", ErrUnavailable},
	{"bad-request", ErrBadRequest},
	{"no-build", ErrNoBuild},
	{"no-log", ErrNoLog},
}
