package node

import "errors"

// Errors returned by this package.
var (
	// ErrConfig wraps every error of Config.Validate.
	ErrConfig = errors.New("bad configuration")
	// ErrInitialised is returned by init on a data dir that already holds a
	// mesh secret.
	ErrInitialised = errors.New("data dir already initialised")
	// ErrNotInitialised is returned by run on a data dir without a mesh secret.
	ErrNotInitialised = errors.New("data dir not initialised")
	// ErrSecretMismatch is returned by join when the data dir already belongs
	// to a mesh with another secret.
	ErrSecretMismatch = errors.New("data dir belongs to a mesh with another secret")
	// ErrRunTwice is returned by a second call of Node.Run: a node runs once.
	ErrRunTwice = errors.New("node already ran")
)
