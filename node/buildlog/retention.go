package buildlog

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"
)

// removedSuffix names the marker left for a log that retention removed:
// an empty file whose modification time is when it was removed, so that
// readers can say so rather than "no log".
const removedSuffix = ".removed"

// RemovedError is returned for a log that retention removed. It matches
// ErrNotFound.
type RemovedError struct {
	// Drv is the derivation's base name.
	Drv string
	// When is when the log was removed.
	When time.Time
}

func (e *RemovedError) Error() string {
	return fmt.Sprintf("log of %s removed by retention on %s", e.Drv, e.When.UTC().Format(time.DateOnly))
}

// Unwrap makes a RemovedError match ErrNotFound.
func (e *RemovedError) Unwrap() error { return ErrNotFound }

// Retention says which finished logs Prune removes.
type Retention struct {
	// MaxAge removes the log of a successful build finished longer ago.
	MaxAge time.Duration
	// FailedMaxAge removes the log of a failed build finished longer ago;
	// markers of removed logs go after it too.
	FailedMaxAge time.Duration
	// MaxSize bounds the finished logs together, in bytes of gzip: past
	// it the oldest go first, successful builds' before failed ones'.
	MaxSize int64
	// Failed reports whether the build of a derivation (by base name)
	// failed; nil means none did.
	Failed func(drvBase string) bool
}

// finished is one finished log, for Prune.
type finished struct {
	base   string
	size   int64
	mod    time.Time
	failed bool
}

// Prune removes the finished logs that r no longer keeps at now, leaving a
// marker for each, and drops markers older than r.FailedMaxAge. It returns
// how many logs it removed. Live logs are never removed.
func (d *Dir) Prune(now time.Time, r Retention) (int, error) {
	logs, err := d.finished(r.Failed)
	if err != nil {
		return 0, fmt.Errorf("log retention: %w", err)
	}
	// Oldest first, successful builds' first: the order logs go in once
	// the directory is over MaxSize.
	slices.SortFunc(logs, func(a, b finished) int {
		if a.failed != b.failed {
			if a.failed {
				return 1
			}
			return -1
		}
		return a.mod.Compare(b.mod)
	})
	var total int64
	for _, l := range logs {
		total += l.size
	}
	removed := 0
	for _, l := range logs {
		age := r.MaxAge
		if l.failed {
			age = r.FailedMaxAge
		}
		if now.Sub(l.mod) <= age && (r.MaxSize <= 0 || total <= r.MaxSize) {
			continue
		}
		if err := d.removeLog(l.base, now); err != nil {
			return removed, fmt.Errorf("log retention: %w", err)
		}
		total -= l.size
		removed++
	}
	return removed, d.dropMarkers(now.Add(-r.FailedMaxAge))
}

// finished lists the finished logs.
func (d *Dir) finished(failed func(string) bool) ([]finished, error) {
	entries, err := os.ReadDir(d.path)
	if err != nil {
		return nil, err
	}
	var out []finished
	for _, e := range entries {
		base, ok := strings.CutSuffix(e.Name(), doneSuffix)
		if !ok || validBase(base) != nil {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, finished{base: base, size: fi.Size(), mod: fi.ModTime(),
			failed: failed != nil && failed(base)})
	}
	return out, nil
}

// removeLog leaves the marker of drvBase's log, then removes the log: a
// crash in between leaves a log that says it was removed, which the next
// Prune removes.
func (d *Dir) removeLog(drvBase string, now time.Time) error {
	marker := d.file(drvBase, removedSuffix)
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		return err
	}
	if err := os.Chtimes(marker, now, now); err != nil {
		return err
	}
	if err := os.Remove(d.file(drvBase, doneSuffix)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// dropMarkers removes the markers of logs removed before cutoff.
func (d *Dir) dropMarkers(cutoff time.Time) error {
	entries, err := os.ReadDir(d.path)
	if err != nil {
		return fmt.Errorf("log retention: %w", err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), removedSuffix) {
			continue
		}
		if fi, err := e.Info(); err == nil && fi.ModTime().Before(cutoff) {
			if err := os.Remove(d.file(strings.TrimSuffix(e.Name(), removedSuffix), removedSuffix)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("log retention: %w", err)
			}
		}
	}
	return nil
}

// Removed returns the RemovedError of drvBase if retention removed its
// log (and no new one was started since), else nil.
func (d *Dir) Removed(drvBase string) error {
	fi, err := os.Stat(d.file(drvBase, removedSuffix))
	if err != nil {
		return nil
	}
	return &RemovedError{Drv: drvBase, When: fi.ModTime()}
}
