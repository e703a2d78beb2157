package netns

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// RemoveStale deletes the namespaces and links that runs of this package in
// processes that no longer exist left behind (a test binary killed before its
// cleanup), killing whatever still runs in them. Networks of live processes,
// including this one, are left alone.
func RemoveStale() error {
	var errs []error
	namespaces, _ := filepath.Glob("/run/netns/" + Prefix + "*")
	for _, p := range namespaces {
		name := filepath.Base(p)
		if stale(name) {
			errs = append(errs, killNamespace(name), delNamespace(name))
		}
	}
	links, _ := filepath.Glob("/sys/class/net/" + Prefix + "*")
	for _, p := range links {
		name := filepath.Base(p)
		if stale(name) {
			errs = append(errs, delLink(name))
		}
	}
	return errors.Join(errs...)
}

// stale reports whether name was made by this package in a process that is
// gone. Names that do not decode are not ours and never stale.
func stale(name string) bool {
	pid, ok := ownerPID(name)
	if !ok || pid == os.Getpid() {
		return false
	}
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// ownerPID decodes the PID that runID put into name.
func ownerPID(name string) (int, bool) {
	const digits = 5
	if !strings.HasPrefix(name, Prefix) || len(name) < len(Prefix)+digits+1 {
		return 0, false
	}
	pid, err := strconv.ParseInt(name[len(Prefix):len(Prefix)+digits], 36, 64)
	if err != nil || pid <= 1 || pid > 1<<22 {
		return 0, false
	}
	return int(pid), true
}
