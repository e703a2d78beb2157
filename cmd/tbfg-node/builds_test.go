package main

import (
	"bytes"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/node/adminapi"
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
