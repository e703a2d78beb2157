package buildlog

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const base = "0123456789abcdfghijklmnpqrsvwxyz-hello-2.12.drv"

func openDir(t *testing.T) *Dir {
	t.Helper()
	d, err := Open(filepath.Join(t.TempDir(), "logs"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func write(t *testing.T, w io.Writer, s string) {
	t.Helper()
	if _, err := io.WriteString(w, s); err != nil {
		t.Fatal(err)
	}
}

// readAll opens the log at offset without following and reads it whole.
func readAll(t *testing.T, d *Dir, offset int64) (string, int64) {
	t.Helper()
	rc, start, err := d.Open(context.Background(), base, offset, false)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), start
}

// TestOffsets reads a live log and then the finished one from the same
// offsets: both give the same bytes and the same start.
func TestOffsets(t *testing.T) {
	const text = "line one\nline two\nline three\n" // 29 bytes
	tests := []struct {
		offset    int64
		want      string
		wantStart int64
	}{
		{0, text, 0},
		{5, text[5:], 5},
		{-6, "three\n", 23},
		{-100, text, 0},
		{100, "", 29},
		{29, "", 29},
	}
	d := openDir(t)
	w, err := d.Create(base)
	if err != nil {
		t.Fatal(err)
	}
	write(t, w, text)
	check := func(form string) {
		for _, tt := range tests {
			got, start := readAll(t, d, tt.offset)
			if got != tt.want || start != tt.wantStart {
				t.Errorf("%s log from %d: %q at %d, want %q at %d", form, tt.offset, got, start, tt.want, tt.wantStart)
			}
		}
	}
	check("live")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	check("finished")
	names, _ := filepath.Glob(filepath.Join(d.Path(), "*"))
	if len(names) != 1 || filepath.Base(names[0]) != DoneName(base) {
		t.Errorf("directory holds %q, want only %s", names, DoneName(base))
	}
}

func TestOpenMissingAndBadNames(t *testing.T) {
	d := openDir(t)
	for _, name := range []string{base, "../../etc/passwd", "x", strings.Repeat("a", 32) + "-/x.drv"} {
		if _, _, err := d.Open(context.Background(), name, 0, false); !errors.Is(err, ErrNotFound) {
			t.Errorf("Open(%q): %v, want ErrNotFound", name, err)
		}
	}
	if _, err := d.Create("../x"); err == nil {
		t.Error("Create(../x) succeeded")
	}
}

// TestFollow follows a live log from its start while it is written, and
// gets every byte, then io.EOF once the writer closes.
func TestFollow(t *testing.T) {
	d := openDir(t)
	w, err := d.Create(base)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Create(base); !errors.Is(err, ErrBusy) {
		t.Errorf("second Create: %v, want ErrBusy", err)
	}
	rc, start, err := d.Open(context.Background(), base, -10, true)
	if err != nil || start != 0 {
		t.Fatalf("Open: start %d, %v", start, err)
	}
	defer rc.Close()
	got := make(chan string)
	go func() {
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Error(err)
		}
		got <- string(b)
	}()
	var want strings.Builder
	for i := range 100 {
		line := strings.Repeat("x", i) + "\n"
		write(t, w, line)
		want.WriteString(line)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if g := <-got; g != want.String() {
		t.Errorf("followed %d bytes, want %d", len(g), want.Len())
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestFollowEndsWithContext: a follower of a silent log returns ctx's error.
func TestFollowEndsWithContext(t *testing.T) {
	d := openDir(t)
	w, err := d.Create(base)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	write(t, w, "started\n")
	ctx, cancel := context.WithCancel(context.Background())
	rc, _, err := d.Open(ctx, base, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	buf := make([]byte, 64)
	if n, err := rc.Read(buf); err != nil || string(buf[:n]) != "started\n" {
		t.Fatalf("first read: %q, %v", buf[:n], err)
	}
	go cancel()
	if _, err := rc.Read(buf); !errors.Is(err, context.Canceled) {
		t.Errorf("read after cancel: %v, want context.Canceled", err)
	}
}

// TestReadersDuringClose opens readers while the writer closes: each reads
// the whole log, from the live file or the finished one.
func TestReadersDuringClose(t *testing.T) {
	d := openDir(t)
	w, err := d.Create(base)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Repeat("some build output\n", 2000)
	write(t, w, text)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				rc, _, err := d.Open(context.Background(), base, 0, true)
				if err != nil {
					t.Error(err)
					return
				}
				b, err := io.ReadAll(rc)
				rc.Close()
				if err != nil || string(b) != text {
					t.Errorf("read %d bytes, %v; want %d", len(b), err, len(text))
					return
				}
			}
		}()
	}
	done := make(chan error, 1)
	go func() { done <- w.Close() }()
	wg.Wait()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestStaleLiveLog: a live file left by a crash is a finished log once the
// directory is opened again, and a later build of the same derivation
// replaces it.
func TestStaleLiveLog(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	w, err := d.Create(base)
	if err != nil {
		t.Fatal(err)
	}
	write(t, w, "interrupted build\n")
	if err := os.WriteFile(filepath.Join(dir, base+tmpSuffix), []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The process "dies": w is never closed.
	d2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := readAll(t, d2, 0); got != "interrupted build\n" {
		t.Errorf("stale log reads %q", got)
	}
	if _, err := os.Stat(filepath.Join(dir, base+tmpSuffix)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file left: %v", err)
	}
	w2, err := d2.Create(base)
	if err != nil {
		t.Fatal(err)
	}
	write(t, w2, "second attempt\n")
	if got, _ := readAll(t, d2, 0); got != "second attempt\n" {
		t.Errorf("while the second attempt runs, the log reads %q", got)
	}
	if err := w2.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := readAll(t, d2, 0); got != "second attempt\n" {
		t.Errorf("after the second attempt, the log reads %q", got)
	}
}

// TestFollowWakesWithoutPolling: a follower blocked in Read returns as soon
// as the writer writes.
func TestFollowWakesWithoutPolling(t *testing.T) {
	d := openDir(t)
	w, err := d.Create(base)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	rc, _, err := d.Open(context.Background(), base, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got := make(chan string, 1)
	go func() {
		buf := make([]byte, 64)
		n, _ := rc.Read(buf)
		got <- string(buf[:n])
	}()
	write(t, w, "hello\n")
	select {
	case g := <-got:
		if g != "hello\n" {
			t.Errorf("read %q", g)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the follower was not woken")
	}
}
