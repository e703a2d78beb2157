// Package pipe turns a function that writes a stream (a NAR dump, an export)
// into an io.ReadCloser fed from its own goroutine, whose Close waits for that
// goroutine. It owns nothing else.
package pipe
