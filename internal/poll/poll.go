package poll

import (
	"fmt"
	"time"
)

// Until calls cond every interval until it returns nil, and returns nil.
// After timeout it returns cond's last error, saying how long it waited.
func Until(timeout, interval time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s: %w", timeout, err)
		}
		time.Sleep(interval) // the polling interval, not synchronisation
	}
}

// Fatal is Until that fails tb, naming what it waited for, on timeout.
func Fatal(tb interface {
	Helper()
	Fatalf(format string, args ...any)
}, timeout, interval time.Duration, what string, cond func() error) {
	tb.Helper()
	if err := Until(timeout, interval, cond); err != nil {
		tb.Fatalf("%s: %v", what, err)
	}
}
