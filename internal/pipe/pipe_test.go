package pipe

import (
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
)

func TestFrom(t *testing.T) {
	errBroken := errors.New("broken")
	tests := []struct {
		name    string
		write   func(w io.Writer) error
		want    string
		wantErr error
	}{
		{"content", func(w io.Writer) error {
			_, err := io.WriteString(w, "hello, world")
			return err
		}, "hello, world", nil},
		{"writer error ends the stream", func(w io.Writer) error {
			if _, err := io.WriteString(w, "part"); err != nil {
				return err
			}
			return errBroken
		}, "part", errBroken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := From(tt.write)
			got, err := io.ReadAll(rc)
			if string(got) != tt.want || !errors.Is(err, tt.wantErr) {
				t.Errorf("read %q, %v; want %q, %v", got, err, tt.want, tt.wantErr)
			}
			if err := rc.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
	}
}

// TestCloseWaitsForWriter closes before the writer is done: Close must return
// only after the writer returned, with its writes failing.
func TestCloseWaitsForWriter(t *testing.T) {
	var returned atomic.Bool
	var lastErr error
	rc := From(func(w io.Writer) error {
		defer returned.Store(true)
		for {
			if _, err := io.WriteString(w, strings.Repeat("x", 1024)); err != nil {
				lastErr = err
				return err
			}
		}
	})
	if _, err := io.ReadFull(rc, make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	if err := rc.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if !returned.Load() {
		t.Fatal("Close returned before the writer")
	}
	if !errors.Is(lastErr, io.ErrClosedPipe) {
		t.Fatalf("writer saw %v, want io.ErrClosedPipe", lastErr)
	}
}
