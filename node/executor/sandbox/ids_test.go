package sandbox

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestParseIDRange(t *testing.T) {
	tests := []struct {
		in      string
		want    IDRange
		wantErr bool
	}{
		{"30000-30063", IDRange{30000, 64}, false},
		{" 1879048192-1879048447 ", IDRange{0x70000000, 256}, false},
		{"100-100", IDRange{100, 1}, false},
		{"100", IDRange{}, true},
		{"200-100", IDRange{}, true},
		{"0-10", IDRange{}, true},
		{"65000-66000", IDRange{}, true},
		{"4294967290-4294967295", IDRange{}, true},
		{"a-b", IDRange{}, true},
		{"-5-10", IDRange{}, true},
	}
	for _, tt := range tests {
		got, err := ParseIDRange(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseIDRange(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err == nil && got.String() != trimmed(tt.in) {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), trimmed(tt.in))
		}
	}
}

func trimmed(s string) string {
	for len(s) > 0 && s[0] == ' ' {
		s = s[1:]
	}
	for len(s) > 0 && s[len(s)-1] == ' ' {
		s = s[:len(s)-1]
	}
	return s
}

// TestIDPoolExclusive checks that an id is never given twice at once,
// across two pools sharing a lock directory as two nodes on one machine do.
func TestIDPoolExclusive(t *testing.T) {
	dir := t.TempDir()
	r := IDRange{First: 5000, Count: 2}
	a, err := newIDPool(r, dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := newIDPool(r, dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	first, err := a.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer first.release()
	second, err := b.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer second.release()
	if first.uid == second.uid || first.uid != first.gid {
		t.Fatalf("ids %d and %d given at once (gid %d)", first.uid, second.uid, first.gid)
	}
	// a holds one id; the other is locked by b, as by another process.
	if _, err := a.acquire(ctx); !errors.Is(err, errNoIDs) {
		t.Fatalf("third acquire = %v, want errNoIDs", err)
	}
}

// TestIDPoolWaits checks that a build waits while this process holds every
// id, and gets the one released.
func TestIDPoolWaits(t *testing.T) {
	p, err := newIDPool(IDRange{First: 5500, Count: 1}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	held, err := p.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan lease, 1)
	go func() {
		l, err := p.acquire(context.Background())
		if err != nil {
			t.Error(err)
		}
		got <- l
	}()
	select {
	case l := <-got:
		t.Fatalf("got id %d while it was held", l.uid)
	default:
	}
	held.release()
	l := <-got
	if l.uid != held.uid {
		t.Errorf("got id %d, want %d", l.uid, held.uid)
	}
	l.release()
}

// TestIDPoolCancel checks that waiting for an id ends with the context.
func TestIDPoolCancel(t *testing.T) {
	p, err := newIDPool(IDRange{First: 6000, Count: 1}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	held, err := p.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer held.release()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := p.acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("acquire = %v, want the context's error", err)
	}
}
