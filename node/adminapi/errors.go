package adminapi

import "errors"

// Errors of the admin API, on both sides of the socket.
var (
	// ErrNotRunning is returned by Client when no node answers on the socket.
	ErrNotRunning = errors.New("no node running")
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
)
