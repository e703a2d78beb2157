package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tbfg/tbfg-node/node/adminapi"
)

// progress is what submit --wait knows of the builds it follows: the
// latest state of each, and those that finished, in the order they did.
type progress struct {
	total    int
	start    time.Time
	states   map[uint64]string
	done     map[uint64]bool
	finished []adminapi.BuildView
}

// newProgress starts following builds at start.
func newProgress(builds []adminapi.SubmittedBuild, start time.Time) *progress {
	p := &progress{total: len(builds), start: start, states: make(map[uint64]string, len(builds)), done: map[uint64]bool{}}
	for _, b := range builds {
		p.states[b.ID] = b.State
	}
	return p
}

// update records b's state and reports whether b has just finished.
func (p *progress) update(b adminapi.BuildView) bool {
	if _, ok := p.states[b.ID]; !ok {
		return false // not a build of the submission
	}
	p.states[b.ID] = b.State
	if !finalState(b.State) || p.done[b.ID] {
		return false
	}
	p.done[b.ID] = true
	p.finished = append(p.finished, b)
	return true
}

// line is the progress line at now: builds done of all, running (allocated
// to a node or running there), failed (finished without success), the
// time since the start and an estimate of the time left, from the pace so
// far.
func (p *progress) line(now time.Time) string {
	running, failed := 0, 0
	for _, s := range p.states {
		if s == "allocated" || s == "running" {
			running++
		}
	}
	for _, b := range p.finished {
		if !succeeded(b) {
			failed++
		}
	}
	done := len(p.finished)
	elapsed := now.Sub(p.start)
	left := "estimating the time left"
	switch {
	case done == p.total:
		left = "all done"
	case done > 0:
		left = "about " + roundDuration(elapsed*time.Duration(p.total-done)/time.Duration(done)) + " left"
	}
	return fmt.Sprintf("%d/%d done, %d running, %d failed, %s elapsed, %s", done, p.total, running, failed, roundDuration(elapsed), left)
}

// roundDuration is d to the second, as 1m5s.
func roundDuration(d time.Duration) string { return d.Round(time.Second).String() }

// liveLine rewrites one line of a terminal in place. A nil liveLine shows
// nothing.
type liveLine struct {
	w    io.Writer
	last string
}

// show replaces the line with s: carriage return, s, erase to the end of
// the line.
func (l *liveLine) show(s string) {
	if l == nil || s == l.last {
		return
	}
	fmt.Fprintf(l.w, "\r%s\x1b[K", s)
	l.last = s
}

// end leaves the line as it is and moves below it.
func (l *liveLine) end() {
	if l != nil && l.last != "" {
		fmt.Fprintln(l.w)
	}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
