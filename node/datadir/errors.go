package datadir

import "errors"

// Errors returned by this package.
var (
	// ErrLocked is returned by Lock when another process runs a node on the
	// data dir.
	ErrLocked = errors.New("data dir in use by another tbfg-node")
	// ErrBadSecret is returned for a secret that is not 64 hexadecimal
	// digits.
	ErrBadSecret = errors.New("bad mesh secret")
)
