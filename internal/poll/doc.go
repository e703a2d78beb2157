// Package poll waits for a condition by asking it again at an interval until
// a deadline: how tests and benchmarks wait for other processes and
// goroutines without using sleeps as synchronisation. It knows nothing
// about what it waits for.
package poll
