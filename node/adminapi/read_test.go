package adminapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/poll"
	"github.com/tbfg/tbfg-node/node/datadir"
)

// rawGet sends GET path to the admin socket in dir and returns the answer
// with its body read.
func rawGet(t *testing.T, dir, path string) (*http.Response, string) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", filepath.Join(dir, datadir.AdminSocket))
	}}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get("http://node" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// waiting reports whether a WaitIndex call of f is blocked.
func (f *fakeBackend) waiting() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.applied == nil {
		return errors.New("no WaitIndex call waits")
	}
	return nil
}

func TestReadAtWaitsForIndex(t *testing.T) {
	f := &fakeBackend{builds: []BuildView{{ID: 1, State: "queued"}}}
	f.setIndex(5)
	c := serveAdmin(t, f)
	ctx := context.Background()
	if _, err := c.At(ReadAt{Index: 3}).Builds(ctx, BuildQuery{}); err != nil {
		t.Fatalf("read at an applied index: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.At(ReadAt{Index: 10, Wait: time.Minute}).Builds(ctx, BuildQuery{IDs: []uint64{1}})
		done <- err
	}()
	poll.Fatal(t, 10*time.Second, time.Millisecond, "the read waits for index 10", f.waiting)
	select {
	case err := <-done:
		t.Fatalf("read at index 10 answered while 5 is applied: %v", err)
	default:
	}
	f.setIndex(10)
	if err := <-done; err != nil {
		t.Fatalf("read at index 10 once applied: %v", err)
	}
	if len(f.queries) != 2 {
		t.Errorf("%d reads reached the backend, want 2", len(f.queries))
	}
}

func TestReadAtTimeout(t *testing.T) {
	f := &fakeBackend{}
	f.setIndex(10)
	c := serveAdmin(t, f)
	_, err := c.At(ReadAt{Index: 99, Wait: 20 * time.Millisecond}).Builds(context.Background(), BuildQuery{})
	if !errors.Is(err, ErrIndexWait) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("read at an index never applied: %v, want ErrIndexWait", err)
	}
	for _, want := range []string{"applied Raft index 10, not yet 99, after waiting 20ms", "retry with a longer wait"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if len(f.queries) != 0 {
		t.Errorf("the backend was read after the wait failed")
	}
}

func TestReadAtHeaderAndParams(t *testing.T) {
	f := &fakeBackend{builds: []BuildView{}}
	f.setIndex(12)
	c := serveAdmin(t, f)
	for _, tc := range []struct {
		path, code, index, body string
	}{
		{"/v1/status", "200", "12", `"applied_index"`},
		{"/v1/builds?index=12&wait=1s", "200", "12", "[]"},
		{"/v1/builds?index=x", "400", "", `index \"x\": want a Raft index`},
		{"/v1/nodes?wait=10m", "400", "", `wait \"10m\": want a duration such as 30s, over 0 and at most 5m0s`},
		{"/v1/builds?index=13&wait=1ms", "503", "12", `"kind": "index-wait"`},
		{"/v1/builds/x/log", "400", "12", `build id \"x\": want a build number`},
		{"/v1/builds/1/log?follow=maybe", "400", "12", `follow \"maybe\": want 1 or 0`},
		{"/v1/changes?cursor=" + strings.Repeat("c", 65), "400", "12", "pass back the cursor of an earlier answer"},
	} {
		resp, body := rawGet(t, filepath.Dir(c.socket), tc.path)
		if got := fmt.Sprint(resp.StatusCode); got != tc.code || resp.Header.Get(IndexHeader) != tc.index || !strings.Contains(body, tc.body) {
			t.Errorf("GET %s: %s, %s %q, %s; want %s, index %q, a body with %s", tc.path, got, IndexHeader,
				resp.Header.Get(IndexHeader), body, tc.code, tc.index, tc.body)
		}
	}
}

func TestChanges(t *testing.T) {
	f := &fakeBackend{changes: []Changes{{Cursor: "4-2", Index: 4, Reset: true}, {Cursor: "6-3", Index: 6, Builds: []uint64{1, 2}}}}
	c := serveAdmin(t, f)
	ctx := context.Background()
	first, err := c.Changes(ctx, "")
	if err != nil || first.Cursor != "4-2" || !first.Reset || first.Builds == nil {
		t.Fatalf("first changes: %+v, %v", first, err)
	}
	next, err := c.Changes(ctx, first.Cursor)
	if err != nil || next.Index != 6 || !slices.Equal(next.Builds, []uint64{1, 2}) {
		t.Fatalf("next changes: %+v, %v", next, err)
	}
	idle, err := c.At(ReadAt{Wait: 10 * time.Millisecond}).Changes(ctx, next.Cursor)
	if err != nil || idle.Cursor != next.Cursor || len(idle.Builds) != 0 || idle.Reset {
		t.Fatalf("changes with none after the cursor: %+v, %v; want the same cursor and no builds", idle, err)
	}
}

// TestShutdownEndsLongPoll checks that Shutdown does not wait for a long
// poll to run its course.
func TestShutdownEndsLongPoll(t *testing.T) {
	dir := t.TempDir()
	f := &fakeBackend{}
	a := NewServer(f, slog.New(slog.DiscardHandler))
	if err := a.Listen(filepath.Join(dir, datadir.AdminSocket)); err != nil {
		t.Fatal(err)
	}
	c := NewClient(dir)
	defer c.Close()
	done := make(chan error, 1)
	go func() {
		_, err := c.At(ReadAt{Wait: MaxWait}).Changes(context.Background(), "c")
		done <- err
	}()
	poll.Fatal(t, 10*time.Second, time.Millisecond, "the long poll reached the backend", func() error {
		if f.polling.Load() == 0 {
			return errors.New("not yet")
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown during a long poll: %v", err)
	}
	<-done
}

func TestActions(t *testing.T) {
	f := &fakeBackend{}
	c := serveAdmin(t, f)
	ctx := context.Background()
	res, err := c.Cancel(ctx, []uint64{1, 2})
	if err != nil || res.Index != 7 || len(res.Builds) != 2 || res.Builds[1].State != "canceled" {
		t.Fatalf("Cancel: %+v, %v", res, err)
	}
	if _, err := c.Retry(ctx, []uint64{3}); err != nil {
		t.Fatal(err)
	}
	for _, ids := range [][]uint64{nil, {0}} {
		if _, err := c.Retry(ctx, ids); !errors.Is(err, ErrBadRequest) {
			t.Errorf("Retry %v: %v, want ErrBadRequest", ids, err)
		}
	}
	if want := []string{"cancel[1 2]", "retry[3]"}; !slices.Equal(f.actions, want) {
		t.Errorf("actions %q, want %q", f.actions, want)
	}
	f.err = fmt.Errorf("%w: 9", ErrNoBuild)
	if _, err := c.Cancel(ctx, []uint64{9}); !errors.Is(err, ErrNoBuild) || err.Error() != "no such build: 9" {
		t.Errorf("Cancel of an unknown build: %v, want ErrNoBuild with the node's text", err)
	}
}

func TestLog(t *testing.T) {
	f := &fakeBackend{logs: map[uint64]string{3: "building\n<script>x</script>\n"}}
	c := serveAdmin(t, f)
	ctx := context.Background()
	var out bytes.Buffer
	if err := c.Log(ctx, 3, true, &out); err != nil || out.String() != f.logs[3] {
		t.Fatalf("Log: %q, %v", out.String(), err)
	}
	resp, _ := rawGet(t, filepath.Dir(c.socket), "/v1/builds/3/log")
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("log answered as %q", ct)
	}
	err := c.Log(ctx, 4, false, &out)
	if !errors.Is(err, ErrNoLog) || errors.Is(err, ErrNoBuild) || !strings.Contains(err.Error(), "build 4 has not started") {
		t.Errorf("Log of a build without one: %v, want ErrNoLog", err)
	}
	f.logErr = errors.New("holder went away")
	out.Reset()
	err = c.Log(ctx, 3, false, &out)
	if err == nil || !strings.Contains(err.Error(), "cut short: holder went away") || out.String() != f.logs[3] {
		t.Errorf("Log cut short: %q, %v; want the text, then the error", out.String(), err)
	}
}

func TestErrorKinds(t *testing.T) {
	for _, k := range errorKinds {
		t.Run(k.kind, func(t *testing.T) {
			c := serveAdmin(t, &fakeBackend{err: fmt.Errorf("%w: detail", k.err)})
			_, err := c.Nodes(context.Background())
			if !errors.Is(err, k.err) || err.Error() != k.err.Error()+": detail" {
				t.Errorf("Nodes: %v, want the node's text matching %v", err, k.err)
			}
		})
	}
}
