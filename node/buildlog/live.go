package buildlog

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
)

// live is the state of a log being written: how much is in the file, and
// whether the writer closed. Readers wait on wake, which is closed and
// replaced at every change.
type live struct {
	mu   sync.Mutex
	size int64
	done bool
	wake chan struct{}
}

func newLive() *live { return &live{wake: make(chan struct{})} }

// state returns the bytes written and whether the log is complete.
func (l *live) state() (int64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.size, l.done
}

// waiter returns a channel closed at the next change.
func (l *live) waiter() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.wake
}

// change records n more bytes, or the end, and wakes the readers.
func (l *live) change(n int64, done bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.size += n
	l.done = l.done || done
	close(l.wake)
	l.wake = make(chan struct{})
}

// Writer writes a live build log. It is an io.WriteCloser for one
// goroutine at a time.
type Writer struct {
	d    *Dir
	base string
	f    *os.File
	l    *live
	once sync.Once
	err  error
}

// Write appends p to the live file, where readers see it at once.
func (w *Writer) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if n > 0 {
		w.l.change(int64(n), false)
	}
	return n, err
}

// Close ends the log: the live file is compressed into the finished log,
// renamed into place, then forgotten and removed. Readers following it
// read to its end and stop. Later calls return the first one's error.
func (w *Writer) Close() error {
	w.once.Do(func() {
		err := w.f.Close()
		if err == nil {
			err = compress(w.f.Name(), w.d.file(w.base, tmpSuffix), w.d.file(w.base, doneSuffix))
		}
		w.d.mu.Lock()
		delete(w.d.live, w.base)
		w.d.mu.Unlock()
		w.l.change(0, true)
		if err != nil {
			// The live file stays: the next Open of the directory
			// tries again.
			w.err = err
			return
		}
		w.err = os.Remove(w.f.Name())
	})
	return w.err
}

// liveReader reads a live log through its own descriptor.
type liveReader struct {
	ctx    context.Context
	f      *os.File
	l      *live
	off    int64
	follow bool
}

// Read reads what is written past the reader's offset; at the end of what
// is written it returns io.EOF, unless it follows and the writer has not
// closed: then it waits for more.
func (r *liveReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		wake := r.l.waiter()
		size, done := r.l.state()
		if r.off < size {
			n, err := r.f.ReadAt(p[:min(int64(len(p)), size-r.off)], r.off)
			r.off += int64(n)
			if errors.Is(err, io.EOF) && n > 0 {
				err = nil
			}
			return n, err
		}
		if done || !r.follow {
			return 0, io.EOF
		}
		select {
		case <-wake:
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		}
	}
}

func (r *liveReader) Close() error { return r.f.Close() }
