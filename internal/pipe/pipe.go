package pipe

import "io"

// From returns the reading end of a pipe that write fills from a goroutine of
// its own. Reads end with write's error, or io.EOF when it returns nil. Close
// stops the writer (its further writes fail with io.ErrClosedPipe) and waits
// for it to return, so that whatever write reads, e.g. a store item, is no
// longer in use once Close returns.
func From(write func(w io.Writer) error) io.ReadCloser {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.CloseWithError(write(pw))
	}()
	return &reader{PipeReader: pr, done: done}
}

// reader is the reading end of a pipe written by a goroutine.
type reader struct {
	*io.PipeReader
	done chan struct{}
}

// Close stops the writer and waits for it.
func (r *reader) Close() error {
	err := r.PipeReader.Close()
	<-r.done
	return err
}
