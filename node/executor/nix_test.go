package executor

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/nixtest"
	"github.com/tbfg/tbfg-node/store"
)

// newNixExecutor returns a Nix executor building in a fresh, empty Nix store
// with .drv files imported from e's local store.
func newNixExecutor(t *testing.T, e *env) *Nix {
	t.Helper()
	target := nixtest.New(t, store.GuixDir)
	ex, err := NewNix(NixConfig{Store: target.Store, Dir: store.GuixDir, Source: e.store, Env: target.Cmd("nix").Env})
	if err != nil {
		t.Fatal(err)
	}
	return ex
}

// TestNixExecutor builds the chain through the Nix executor in an empty Nix
// store, the .drv files coming from the local store, and checks what it
// reports against another Nix's own build of the same derivations.
func TestNixExecutor(t *testing.T) {
	e := newStoreEnv(t)
	ex := newNixExecutor(t, e)
	top := e.instantiate(t, "chain.nix", "")
	var drvs []store.Path
	for _, p := range e.topoOrder(t, top) {
		if strings.HasSuffix(string(p), ".drv") {
			drvs = append(drvs, p)
		}
	}
	want := e.nixBuild(t, drvs...)
	seen := 0
	for _, drv := range drvs {
		var log bytes.Buffer
		res, err := ex.Build(context.Background(), Request{DrvPath: drv, Drv: e.load(t, drv), Log: &log})
		if err != nil {
			t.Fatalf("%v\n%s", err, log.String())
		}
		for id, got := range res.Outputs {
			seen++
			w, ok := want[got.Path]
			sum, _ := parseNixSum(w)
			if !ok || got.Nar != sum || !slices.Equal(got.References, w.References) || got.Deriver != drv {
				t.Errorf("%s output %s: got %+v, want %+v", drv, id, got, w)
			}
		}
	}
	if seen != len(want) {
		t.Errorf("executor reported %d outputs, Nix built %d", seen, len(want))
	}
}

// TestNixExecutorFailures checks that Nix's failures map to the same errors
// as the builtin executor's, and that a builder printing the daemon's
// timeout message is still a builder failure.
func TestNixExecutorFailures(t *testing.T) {
	e := newStoreEnv(t)
	ex := newNixExecutor(t, e)
	tests := []struct {
		attr               string
		timeout, maxSilent time.Duration
		want               error
	}{
		{"fails", time.Minute, 0, ErrBuilderFailed},
		{"spoofs-timeout", time.Minute, time.Minute, ErrBuilderFailed},
		{"runs-forever", time.Second, 0, ErrTimedOut},
		{"silent", time.Minute, time.Second, ErrSilent},
		{"fixed-wrong", time.Minute, 0, ErrOutputHash},
	}
	for _, tt := range tests {
		t.Run(tt.attr, func(t *testing.T) {
			drv := e.instantiate(t, "cases.nix", tt.attr)
			_, err := ex.Build(context.Background(), Request{
				DrvPath: drv, Drv: e.load(t, drv), Timeout: tt.timeout, MaxSilent: tt.maxSilent,
			})
			if !errors.Is(err, tt.want) {
				t.Fatalf("Build = %v, want %v", err, tt.want)
			}
			t.Log(err)
		})
	}
}

// TestNixExecutorImportsInputs checks that inputs the local store holds (the
// agent fetched them from the mesh) reach the Nix store by import: Nix must
// build only the requested derivation, not again the inputs another node
// built.
func TestNixExecutorImportsInputs(t *testing.T) {
	e := newStoreEnv(t)
	top := e.instantiate(t, "chain.nix", "")
	var drvs []store.Path
	for _, p := range e.topoOrder(t, top) {
		if strings.HasSuffix(string(p), ".drv") {
			drvs = append(drvs, p)
		}
	}
	built := e.nixBuild(t, drvs[:len(drvs)-1]...) // the inputs, as built elsewhere
	for len(built) > 0 {                          // copied references first
		for p, info := range built {
			if !slices.ContainsFunc(info.References, func(r store.Path) bool { _, todo := built[r]; return todo && r != p }) {
				e.copyFromNix(t, p)
				delete(built, p)
			}
		}
	}
	target := nixtest.New(t, store.GuixDir)
	ex, err := NewNix(NixConfig{Store: target.Store, Dir: store.GuixDir, Source: e.store, Env: target.Cmd("nix").Env})
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	if _, err := ex.Build(context.Background(), Request{DrvPath: top, Drv: e.load(t, top), Log: &log}); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	for _, drv := range drvs {
		err := target.Cmd("nix-store", "--read-log", string(drv)).Run()
		if built := err == nil; built != (drv == top) {
			t.Errorf("Nix built %s: %v; want only %s built, its inputs imported", drv, built, top)
		}
	}
}
