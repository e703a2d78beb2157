package node

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/node/adminapi"
)

// TestNodeCancelRetryAndChanges runs a one-node mesh: a submit answers the
// index that committed it, reads at that index see the builds, cancel and
// retry act through the leader and answer the states after, an unknown
// build is named, and the change feed lists what each command changed.
func TestNodeCancelRetryAndChanges(t *testing.T) {
	dir := t.TempDir()
	cfg := loopbackConfig(t, "n1", ModeInit, dir)
	cfg.MaxBuilds, cfg.Systems = 1, []string{"aarch64-linux"} // the builds stay blocked: nothing runs them
	startNode(t, cfg)
	c := adminapi.NewClient(dir)
	defer c.Close()
	ctx := context.Background()

	src := t.TempDir()
	leaf := writeTestDrv(t, src, "leaf", nil)
	top := writeTestDrv(t, src, "top", nil, leaf)
	res, err := c.Submit(ctx, adminapi.SubmitRequest{Derivations: []string{file(src, top)}})
	if err != nil {
		t.Fatal(err)
	}
	leafID, topID := res.Builds[0].ID, res.Builds[1].ID
	if res.Index == 0 || res.Builds[0].State != "blocked" {
		t.Fatalf("submit answered %+v; want the index that committed it and the states after", res)
	}
	at := c.At(adminapi.ReadAt{Index: res.Index, Wait: time.Minute})
	feed, err := at.Changes(ctx, "")
	if err != nil || !feed.Reset || feed.Index < res.Index {
		t.Fatalf("first changes: %+v, %v; want a Reset at index %d or later", feed, err, res.Index)
	}

	canceled, err := c.Cancel(ctx, []uint64{leafID})
	if err != nil {
		t.Fatal(err)
	}
	if canceled.Index <= res.Index || len(canceled.Builds) != 1 || canceled.Builds[0].State != "canceled" {
		t.Fatalf("cancel answered %+v; want build %d canceled at a later index", canceled, leafID)
	}
	bs, err := c.At(adminapi.ReadAt{Index: canceled.Index}).Builds(ctx, adminapi.BuildQuery{IDs: []uint64{topID}})
	if err != nil || bs[0].State != "failed-dependency" || bs[0].Cause != leafID {
		t.Fatalf("dependent after the cancel: %+v, %v; want failed-dependency caused by %d", bs, err, leafID)
	}
	feed, err = at.Changes(ctx, feed.Cursor)
	if err != nil || feed.Reset || !slices.Equal(feed.Builds, []uint64{leafID, topID}) {
		t.Fatalf("changes after the cancel: %+v, %v; want builds %d and %d", feed, err, leafID, topID)
	}

	retried, err := c.Retry(ctx, []uint64{topID}) // re-queues its cause, the leaf
	if err != nil {
		t.Fatal(err)
	}
	if retried.Builds[0].State != "failed-dependency" {
		t.Errorf("retried dependent: %+v; want still failed-dependency until its cause succeeds", retried.Builds[0])
	}
	bs, err = c.At(adminapi.ReadAt{Index: retried.Index}).Builds(ctx, adminapi.BuildQuery{IDs: []uint64{leafID}})
	if err != nil || bs[0].State != "blocked" {
		t.Errorf("cause after retrying its dependent: %+v, %v; want re-queued (blocked: no node builds it)", bs, err)
	}

	_, err = c.Cancel(ctx, []uint64{topID, 999})
	if !errors.Is(err, adminapi.ErrNoBuild) || err.Error() != "no such build: 999" {
		t.Errorf("cancel of an unknown build: %v", err)
	}
	if _, err := c.At(adminapi.ReadAt{Index: retried.Index + 1000, Wait: 10 * time.Millisecond}).Status(ctx); !errors.Is(err, adminapi.ErrIndexWait) {
		t.Errorf("status at an index not committed: %v, want ErrIndexWait", err)
	}
}
