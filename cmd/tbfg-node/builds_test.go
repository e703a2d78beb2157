package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/node/adminapi"
	"github.com/tbfg/tbfg-node/node/datadir"
)

func TestDrvArgs(t *testing.T) {
	t.Chdir(t.TempDir())
	got, err := drvArgs(strings.NewReader("/gnu/store/a-x.drv\n\n  rel/b.drv  \n"), []string{"c.drv", "-", "/copy/d.drv"})
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := filepath.Abs(".")
	want := []string{filepath.Join(wd, "c.drv"), "/gnu/store/a-x.drv", filepath.Join(wd, "rel/b.drv"), "/copy/d.drv"}
	if !slices.Equal(got, want) {
		t.Errorf("drvArgs = %q, want %q", got, want)
	}
}

func TestBuildsFormatGolden(t *testing.T) {
	at := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	var out bytes.Buffer
	err := formatBuilds(&out, []adminapi.BuildView{
		{ID: 1, Derivation: "/gnu/store/aaaa-leaf.drv", State: "allocated", Node: "12D3KooWM1HFvD1TGkfjEqJ99oZKZ1sUp57EsGDmMbeNN5GLDWKk", Attempt: 1, Submitted: &at},
		{ID: 2, Derivation: "/gnu/store/bbbb-top.drv", State: "queued", Reason: "agent-lost", Attempt: 1, Submitted: &at},
		{ID: 3, Derivation: "/gnu/store/cccc-old.drv", State: "available"},
		{ID: 4, Derivation: "/gnu/store/dddd-done.drv", State: "succeeded", LastNode: "12D3KooWQmxRBYzN7KXyqe2WLCQ2uDSVdsrGgxpgvWeMbWv9yXuX", Attempt: 2, Submitted: &at},
	})
	if err != nil {
		t.Fatal(err)
	}
	meshGolden(t, "builds.golden", out.Bytes())
}

// fakeNode serves the submit and builds calls of the admin API on a unix
// socket in a new data dir; builds answers with states, in order, one
// answer per call, repeating the last.
type fakeNode struct {
	mu      sync.Mutex
	answers [][]adminapi.BuildView
	calls   int
	req     adminapi.SubmitRequest
}

func (f *fakeNode) serve(t *testing.T) string {
	dir := t.TempDir()
	l, err := net.Listen("unix", filepath.Join(dir, datadir.AdminSocket))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/submit", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		json.NewDecoder(r.Body).Decode(&f.req)
		res := adminapi.SubmitResult{Roots: []adminapi.SubmittedBuild{{ID: 2, Derivation: "/gnu/store/bbbb-top.drv", State: "queued"}},
			Builds: []adminapi.SubmittedBuild{{ID: 1, Derivation: "/gnu/store/aaaa-leaf.drv"}, {ID: 2, Derivation: "/gnu/store/bbbb-top.drv"}}}
		json.NewEncoder(w).Encode(res)
	})
	mux.HandleFunc("GET /v1/builds", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		a := f.answers[min(f.calls, len(f.answers)-1)]
		f.calls++
		json.NewEncoder(w).Encode(a)
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return dir
}

func TestSubmitWait(t *testing.T) {
	leaf := func(state string) adminapi.BuildView {
		return adminapi.BuildView{ID: 1, Derivation: "/gnu/store/aaaa-leaf.drv", State: state}
	}
	top := func(state string) adminapi.BuildView {
		return adminapi.BuildView{ID: 2, Derivation: "/gnu/store/bbbb-top.drv", State: state}
	}
	for _, tc := range []struct {
		name     string
		answers  [][]adminapi.BuildView
		wantCode int
		wantErr  string
	}{
		{"all succeed", [][]adminapi.BuildView{{leaf("running"), top("queued")}, {leaf("succeeded"), top("running")}, {top("succeeded")}}, 0, ""},
		{"one fails", [][]adminapi.BuildView{{leaf("failed"), top("failed-dependency")}}, 1, "2 of 2 builds did not succeed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeNode{answers: tc.answers}
			dir := f.serve(t)
			var out, errOut bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			code := run(ctx, &stdio{in: strings.NewReader(""), out: &out, err: &errOut},
				[]string{"submit", "--data-dir", dir, "--wait", "--poll", "10ms", "--priority", "3", "/gnu/store/bbbb-top.drv"})
			if code != tc.wantCode || !strings.Contains(errOut.String(), tc.wantErr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut.String(), tc.wantCode, tc.wantErr)
			}
			if !strings.HasPrefix(out.String(), "2\tqueued\t/gnu/store/bbbb-top.drv\n") {
				t.Errorf("output %q does not start with the submitted build", out.String())
			}
			if f.req.Priority != 3 || !slices.Equal(f.req.Derivations, []string{"/gnu/store/bbbb-top.drv"}) {
				t.Errorf("request %+v", f.req)
			}
		})
	}
}

func TestSubmitWithoutNode(t *testing.T) {
	var errOut bytes.Buffer
	code := run(context.Background(), &stdio{in: strings.NewReader(""), out: &bytes.Buffer{}, err: &errOut},
		[]string{"submit", "--data-dir", t.TempDir(), "/gnu/store/bbbb-top.drv"})
	if code != 1 || !strings.Contains(errOut.String(), adminapi.ErrNotRunning.Error()) {
		t.Errorf("exit %d, %q; want 1 and %q", code, errOut.String(), adminapi.ErrNotRunning)
	}
}
