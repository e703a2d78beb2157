package adminapi

import (
	"context"
	"errors"
	"testing"
)

// TestAdminGC checks the round trip of POST /v1/gc through Client, and that
// a negative size is refused as a bad request.
func TestAdminGC(t *testing.T) {
	c := serveAdmin(t, &fakeBackend{})
	res, err := c.GC(context.Background(), GCRequest{DryRun: true, Free: 10})
	if err != nil {
		t.Fatal(err)
	}
	if !res.DryRun || res.Want != 10 || res.Freed != 7 || len(res.Removed) != 1 ||
		res.Removed[0] != (GCItem{Path: "/gnu/store/x-a", Size: 7, Class: "fetched"}) {
		t.Errorf("GC answered %+v", res)
	}
	if _, err := c.GC(context.Background(), GCRequest{Free: -1}); !errors.Is(err, ErrBadRequest) {
		t.Errorf("GC with a negative size: %v, want ErrBadRequest", err)
	}
}
