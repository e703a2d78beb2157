package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tbfg/tbfg-node/node/adminapi"
)

func TestProgressLine(t *testing.T) {
	start := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	var submitted []adminapi.SubmittedBuild
	for id := range uint64(4) {
		submitted = append(submitted, adminapi.SubmittedBuild{ID: id + 1, State: "queued"})
	}
	p := newProgress(submitted, start)
	view := func(id uint64, state string) adminapi.BuildView { return adminapi.BuildView{ID: id, State: state} }
	for _, tc := range []struct {
		name     string
		updates  []adminapi.BuildView
		finished []bool // what update reports for each
		at       time.Duration
		want     string
	}{
		{"start", nil, nil, 0, "0/4 done, 0 running, 0 failed, 0s elapsed, estimating the time left"},
		{"one done", []adminapi.BuildView{view(1, "succeeded"), view(2, "allocated"), view(3, "running")}, []bool{true, false, false},
			10 * time.Second, "1/4 done, 2 running, 0 failed, 10s elapsed, about 30s left"},
		{"again", []adminapi.BuildView{view(1, "succeeded"), view(9, "succeeded")}, []bool{false, false},
			20 * time.Second, "1/4 done, 2 running, 0 failed, 20s elapsed, about 1m0s left"},
		{"one fails", []adminapi.BuildView{view(2, "failed"), view(3, "succeeded")}, []bool{true, true},
			90*time.Second + 400*time.Millisecond, "3/4 done, 0 running, 1 failed, 1m30s elapsed, about 30s left"},
		{"all done", []adminapi.BuildView{view(4, "failed-dependency")}, []bool{true},
			2 * time.Minute, "4/4 done, 0 running, 2 failed, 2m0s elapsed, all done"},
	} {
		for i, b := range tc.updates {
			if got := p.update(b); got != tc.finished[i] {
				t.Errorf("%s: update %d %s reported finished %v", tc.name, b.ID, b.State, got)
			}
		}
		if got := p.line(start.Add(tc.at)); got != tc.want {
			t.Errorf("%s: line %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestLiveLine(t *testing.T) {
	var out bytes.Buffer
	l := &liveLine{w: &out}
	l.show("1/2 done")
	l.show("1/2 done")
	l.show("2/2 done")
	l.end()
	if want := "\r1/2 done\x1b[K\r2/2 done\x1b[K\n"; out.String() != want {
		t.Errorf("live line wrote %q, want %q", out.String(), want)
	}
	var none *liveLine
	none.show("x")
	none.end()
	(&liveLine{w: &out}).end() // nothing shown: nothing to end
	if out.String() != "\r1/2 done\x1b[K\r2/2 done\x1b[K\n" {
		t.Errorf("a line that showed nothing wrote %q", out.String())
	}
}

// openPTY opens a pseudo-terminal: its controlling side and the terminal.
func openPTY(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v (needs /dev/ptmx, a devpts mount)", err)
	}
	t.Cleanup(func() { ptm.Close() })
	if err := unix.IoctlSetPointerInt(int(ptm.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pseudo-terminal: %v", err)
	}
	n, err := unix.IoctlGetInt(int(ptm.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pseudo-terminal number: %v", err)
	}
	pts, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return ptm, pts
}

// TestSubmitWaitOnTerminal runs submit --wait with its output on a real
// pseudo-terminal: it shows the progress line, rewritten in place, instead
// of a line per finished build.
func TestSubmitWaitOnTerminal(t *testing.T) {
	ptm, pts := openPTY(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if !isTerminal(pts) || isTerminal(w) || isTerminal(&bytes.Buffer{}) {
		t.Fatal("isTerminal does not tell the pseudo-terminal from a pipe and a buffer")
	}
	var got bytes.Buffer
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, err := io.Copy(&got, ptm) // until the terminal side is closed: EIO
		if err != nil && !errors.Is(err, unix.EIO) {
			t.Errorf("read pseudo-terminal: %v", err)
		}
	}()
	f := newFakeNode(1, "1:/gnu/store/aaaa-leaf.drv", "2:/gnu/store/bbbb-top.drv")
	f.steps = []step{{states: map[uint64]string{1: "running"}}, {states: map[uint64]string{1: "succeeded", 2: "running"}},
		{states: map[uint64]string{2: "succeeded"}}}
	var errOut bytes.Buffer
	code := run(t.Context(), &stdio{in: &bytes.Buffer{}, out: pts, err: &errOut},
		[]string{"submit", "--data-dir", f.serve(t), "--wait", "/gnu/store/bbbb-top.drv"})
	pts.Close()
	wg.Wait()
	out := got.String()
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	// The terminal turns \n into \r\n.
	want := regexp.MustCompile(`^2\tsubmitted\t/gnu/store/bbbb-top.drv\r\n(\r[^\r\n]*\x1b\[K)*` +
		`\r2/2 done, 0 running, 0 failed, \d+s elapsed, all done\x1b\[K\r\n$`)
	if !want.MatchString(out) {
		t.Errorf("terminal got %q, want the submitted root, then progress lines ending with all done", out)
	}
	if !regexp.MustCompile(`\r1/2 done, 1 running, 0 failed, \d+s elapsed, about \d+s left\x1b\[K`).MatchString(out) {
		t.Errorf("terminal got %q, want a line with one build done and one running", out)
	}
}
