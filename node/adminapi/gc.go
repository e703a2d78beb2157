package adminapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
)

// maxGCBody bounds the body of POST /v1/gc.
const maxGCBody = 1 << 10

// GCRequest is the body of POST /v1/gc: collect the node's store now.
type GCRequest struct {
	// DryRun says what would be removed, removing nothing.
	DryRun bool `json:"dry_run"`
	// Free is how many bytes to free at least, beyond what --store-max
	// and --min-free ask for; 0 frees only what they ask.
	Free int64 `json:"free"`
}

// GCResult is the answer to POST /v1/gc. Scripts rely on the JSON names.
type GCResult struct {
	// DryRun is the request's: Removed were not removed.
	DryRun bool `json:"dry_run"`
	// StoreSize is the store's size, in bytes of NAR, before collecting.
	StoreSize int64 `json:"store_size"`
	// Want is how many bytes the bounds and the request asked to free.
	Want int64 `json:"want"`
	// Freed is the sum of the sizes of Removed.
	Freed int64 `json:"freed"`
	// Removed are the items removed (or to remove), in order.
	Removed []GCItem `json:"removed"`
}

// GCItem is one item a collection removed or would remove.
type GCItem struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
	// Class is why it may go: fetched (an input held without being
	// recorded), replica (a copy beyond --replicas) or built (an output
	// this node built that enough others hold).
	Class string `json:"class"`
}

// gc collects the node's store.
func (a *Server) gc(w http.ResponseWriter, r *http.Request) {
	var req GCRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxGCBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, fmt.Errorf("%w: gc body: %w", ErrBadRequest, err))
		return
	}
	if req.Free < 0 {
		writeError(w, fmt.Errorf("%w: gc: free %d: must be 0 or positive", ErrBadRequest, req.Free))
		return
	}
	res, err := a.backend.GC(r.Context(), req)
	if err != nil {
		a.log.Warn("gc failed", "err", err)
		writeError(w, err)
		return
	}
	if res.Removed == nil {
		res.Removed = []GCItem{}
	}
	writeJSON(w, http.StatusOK, res)
}

// GC collects the node's store now, or says what it would remove.
func (c *Client) GC(ctx context.Context, req GCRequest) (GCResult, error) {
	var res GCResult
	err := c.do(ctx, http.MethodPost, "/v1/gc", req, &res)
	return res, err
}
