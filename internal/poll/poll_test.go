package poll

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestUntil(t *testing.T) {
	calls := 0
	if err := Until(time.Minute, time.Millisecond, func() error {
		if calls++; calls < 3 {
			return errors.New("not yet")
		}
		return nil
	}); err != nil || calls != 3 {
		t.Fatalf("Until = %v after %d calls, want nil after 3", err, calls)
	}
	errNever := errors.New("never")
	err := Until(10*time.Millisecond, time.Millisecond, func() error { return errNever })
	if !errors.Is(err, errNever) || !strings.Contains(err.Error(), "not within 10ms") {
		t.Fatalf("Until = %v, want the last error and the timeout", err)
	}
}
