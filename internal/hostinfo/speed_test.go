package hostinfo

import (
	"testing"
	"time"
)

func TestSpeedFrom(t *testing.T) {
	for _, tc := range []struct {
		n    int
		d    time.Duration
		want float64
	}{
		{1e9, time.Second, 1},
		{2e9, time.Second, 2},
		{1e9, 4 * time.Second, 0.25},
		{1, time.Hour, 0.01}, // never below the floor
		{1e9, 0, 1e9},        // a zero duration does not divide by zero
	} {
		if got := speedFrom(tc.n, tc.d); got != tc.want {
			t.Errorf("speedFrom(%d, %v) = %v, want %v", tc.n, tc.d, got, tc.want)
		}
	}
}

// TestSpeedMeasures checks that a real measurement is a usable figure.
func TestSpeedMeasures(t *testing.T) {
	if s := Speed(); !(s >= 0.01 && s < 1000) {
		t.Fatalf("Speed() = %v, want a figure between 0.01 and 1000 GB/s", s)
	}
}
