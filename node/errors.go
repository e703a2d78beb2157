package node

import (
	"errors"
	"fmt"
	"time"

	"github.com/tbfg/tbfg-node/node/adminapi"
	"github.com/tbfg/tbfg-node/scheduler"
)

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

// noBuild is the error for a build id the replica st has no record of: a
// compacted one says so, with the history kept (--history).
func noBuild(st *scheduler.State, id uint64, history time.Duration) error {
	if st.Compacted(scheduler.BuildID(id)) {
		return fmt.Errorf("%w: build %d compacted: finished more than %s ago (--history)",
			adminapi.ErrNoBuild, id, days(history))
	}
	return fmt.Errorf("%w: %d", adminapi.ErrNoBuild, id)
}

// days prints a duration of whole days as "30d", anything else as Go does.
func days(d time.Duration) string {
	const day = 24 * time.Hour
	if d >= day && d%day == 0 {
		return fmt.Sprintf("%dd", d/day)
	}
	return d.String()
}
