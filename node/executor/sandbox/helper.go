package sandbox

// The helper, PID 1 of a build's namespaces, is C code (helper.c, and
// mount.c for its file system steps) run by a constructor before the Go
// runtime starts; helper.h holds what Go and C agree on.

// #include "helper.h"
import "C"

import (
	"os"
)

const (
	// helperEnv makes the helper run: set up the sandbox described on
	// specFD and run the builder in it.
	helperEnv = C.HELPER_ENV
	// statusFD is where the helper reports how the build ended, in one line:
	// "setup: …" (the sandbox failed), "exec: …" (the builder could not be
	// executed), "exit N" or "signal N".
	statusFD = C.STATUS_FD
	// specFD holds the helperSpec, encoded by helperSpec.encode.
	specFD = C.SPEC_FD

	// insideUID and insideGID are the builder's ids in its user namespace,
	// those of Nix's sandbox; see DESIGN.md.
	insideUID = C.INSIDE_UID
	insideGID = C.INSIDE_GID
)

func init() {
	if os.Getenv(probeEnv) != "" && os.Getpid() != 1 {
		probeMain()
	}
}
