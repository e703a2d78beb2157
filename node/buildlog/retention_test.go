package buildlog

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// finishedLog writes a finished log of drv, size bytes long, and dates it.
func finishedLog(t *testing.T, d *Dir, drv string, size int, at time.Time) {
	t.Helper()
	w, err := d.Create(drv)
	if err != nil {
		t.Fatal(err)
	}
	write(t, w, strings.Repeat("x", size))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(d.file(drv, doneSuffix), at, at); err != nil {
		t.Fatal(err)
	}
}

// TestPrune checks that a successful build's log goes after MaxAge, a
// failed one's only after FailedMaxAge, that over MaxSize the oldest
// successful builds' logs go first, and that a removed log reads as
// removed by retention, with the date.
func TestPrune(t *testing.T) {
	d := openDir(t)
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	logs := []struct {
		drv  string
		age  time.Duration
		gone bool
	}{
		{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-old-ok.drv", 20 * day, true},
		{"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-old-failed.drv", 20 * day, false},
		{"cccccccccccccccccccccccccccccccc-ancient-failed.drv", 60 * day, true},
		{"dddddddddddddddddddddddddddddddd-new-ok.drv", day, false},
	}
	for _, l := range logs {
		finishedLog(t, d, l.drv, 100, now.Add(-l.age))
	}
	r := Retention{MaxAge: 14 * day, FailedMaxAge: 56 * day, MaxSize: 1 << 20,
		Failed: func(drv string) bool { return strings.Contains(drv, "failed") }}
	n, err := d.Prune(now, r)
	if err != nil || n != 2 {
		t.Fatalf("Prune: %d removed, %v; want 2", n, err)
	}
	for _, l := range logs {
		_, _, err := d.Open(context.Background(), l.drv, 0, false)
		var re *RemovedError
		switch {
		case l.gone && (!errors.As(err, &re) || !errors.Is(err, ErrNotFound)):
			t.Errorf("%s: %v, want a RemovedError matching ErrNotFound", l.drv, err)
		case l.gone && !strings.Contains(err.Error(), "removed by retention on 2026-06-01"):
			t.Errorf("%s: %q does not say when it was removed", l.drv, err)
		case !l.gone && err != nil:
			t.Errorf("%s: %v, want it kept", l.drv, err)
		}
	}
	// Over the size bound, the successful build's log goes before the
	// failed one's, though it is newer.
	fi, err := os.Stat(d.file(logs[1].drv, doneSuffix))
	if err != nil {
		t.Fatal(err)
	}
	r.MaxSize = fi.Size()
	if n, err := d.Prune(now, r); err != nil || n != 1 {
		t.Fatalf("Prune over MaxSize: %d removed, %v; want 1", n, err)
	}
	if _, _, err := d.Open(context.Background(), logs[3].drv, 0, false); !errors.Is(err, ErrNotFound) {
		t.Errorf("over MaxSize, the newer successful build's log stayed: %v", err)
	}
	r.MaxSize = 1
	if n, err := d.Prune(now, r); err != nil || n != 1 {
		t.Fatalf("Prune over MaxSize: %d removed, %v; want 1", n, err)
	}
	// Markers go once they are older than FailedMaxAge.
	if _, err := d.Prune(now.Add(60*day), r); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(d.Path()); len(entries) != 0 {
		t.Errorf("left in the directory: %v", entries)
	}
	// A new log of a removed one reads again.
	finishedLog(t, d, logs[0].drv, 10, now)
	rc, _, err := d.Open(context.Background(), logs[0].drv, 0, false)
	if err != nil {
		t.Fatalf("a new log of a derivation whose log was removed: %v", err)
	}
	rc.Close()
}
