package adminapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/tbfg/tbfg-node/node/datadir"
)

// maxAnswer bounds an admin API answer the client reads.
const maxAnswer = 16 << 20

// Client calls a local node's admin API over its unix socket.
type Client struct {
	dataDir string
	socket  string
	hc      *http.Client
	at      ReadAt // of every GET
}

// NewClient returns a client for the node whose data dir is dataDir.
func NewClient(dataDir string) *Client {
	socket := filepath.Join(dataDir, datadir.AdminSocket)
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}
	return &Client{dataDir: dataDir, socket: socket, hc: &http.Client{Transport: tr}}
}

// At returns a client whose reads see the state at Raft index at.Index or
// later (read-your-writes after a submit on another node, or on this one),
// waiting at most at.Wait; GET /v1/changes also waits at most at.Wait for
// a change. It shares c's connections.
func (c *Client) At(at ReadAt) *Client {
	cc := *c
	cc.at = at
	return &cc
}

// Status returns the node's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.call(ctx, http.MethodGet, "/v1/status", &st)
	return st, err
}

// Nodes returns the members of the mesh as the node sees them.
func (c *Client) Nodes(ctx context.Context) ([]NodeView, error) {
	var nodes []NodeView
	err := c.call(ctx, http.MethodGet, "/v1/nodes", &nodes)
	return nodes, err
}

// Leave asks the node to leave the mesh and stop.
func (c *Client) Leave(ctx context.Context) (LeaveResult, error) {
	var res LeaveResult
	err := c.call(ctx, http.MethodPost, "/v1/leave", &res)
	return res, err
}

// Submit submits derivations and their .drv closures for building.
func (c *Client) Submit(ctx context.Context, req SubmitRequest) (SubmitResult, error) {
	var res SubmitResult
	err := c.do(ctx, http.MethodPost, "/v1/submit", req, &res)
	return res, err
}

// Builds lists the builds q selects.
func (c *Client) Builds(ctx context.Context, q BuildQuery) ([]BuildView, error) {
	var builds []BuildView
	path := "/v1/builds"
	if v := url.Values(q.Values()).Encode(); v != "" {
		path += "?" + v
	}
	err := c.call(ctx, http.MethodGet, path, &builds)
	return builds, err
}

// ACL returns the ACL of the mesh's member keys.
func (c *Client) ACL(ctx context.Context) (ACLView, error) {
	var v ACLView
	err := c.call(ctx, http.MethodGet, "/v1/acl", &v)
	return v, err
}

// Changes returns the builds that changed after cursor ("" for an answer
// with Reset and the current cursor, at once), waiting for one at most the
// Wait of At (DefaultWait by default); an answer with no builds means none
// changed meanwhile.
func (c *Client) Changes(ctx context.Context, cursor string) (Changes, error) {
	var ch Changes
	err := c.call(ctx, http.MethodGet, "/v1/changes?"+url.Values{"cursor": {cursor}}.Encode(), &ch)
	return ch, err
}

// Cancel cancels the builds ids that have not finished; builds that need
// them become failed-dependency.
func (c *Client) Cancel(ctx context.Context, ids []uint64) (ActionResult, error) {
	var res ActionResult
	err := c.do(ctx, http.MethodPost, "/v1/cancel", ActionRequest{Builds: ids}, &res)
	return res, err
}

// Retry re-queues the builds ids that failed or were canceled; for a
// failed-dependency build, the build that caused it.
func (c *Client) Retry(ctx context.Context, ids []uint64) (ActionResult, error) {
	var res ActionResult
	err := c.do(ctx, http.MethodPost, "/v1/retry", ActionRequest{Builds: ids}, &res)
	return res, err
}

// Log copies the log of build id to w; with follow, until the build ends.
// A log cut short (its holder went away) is an error after what was
// copied.
func (c *Client) Log(ctx context.Context, id uint64, follow bool, w io.Writer) error {
	path := fmt.Sprintf("/v1/builds/%d/log", id)
	if follow {
		path += "?follow=1"
	}
	resp, err := c.send(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
		return answerError(resp.StatusCode, body)
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("log of build %d: %w", id, err)
	}
	if msg := resp.Trailer.Get(LogErrorTrailer); msg != "" {
		return fmt.Errorf("log of build %d cut short: %s", id, msg)
	}
	return nil
}

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

func (c *Client) call(ctx context.Context, method, path string, out any) error {
	return c.do(ctx, method, path, nil, out)
}

// do sends in, if not nil, as the JSON body of a request and decodes the
// answer into out.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	resp, err := c.send(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	respBody, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("admin API %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return answerError(resp.StatusCode, respBody)
	}
	if err := json.Unmarshal(respBody, out); err != nil {
		return fmt.Errorf("admin API %s: bad answer: %w", path, err)
	}
	return nil
}

// send sends a request, with in, if not nil, as its JSON body, and with
// the ReadAt of At if it is a GET.
func (c *Client) send(ctx context.Context, method, path string, in any) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	if v := url.Values(c.at.Values()); method == http.MethodGet && len(v) > 0 {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		path += sep + v.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://node"+path, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.connError(path, err)
	}
	return resp, nil
}

// connError says why the node could not be reached, and what to do.
func (c *Client) connError(path string, err error) error {
	switch {
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w in %s (start it with tbfg-node run, or name its data dir with --data-dir)", ErrNotRunning, c.dataDir)
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("cannot reach the node in %s: permission denied on %s (run this as the user that runs the node)", c.dataDir, c.socket)
	}
	return fmt.Errorf("admin API %s: %w", strings.SplitN(path, "?", 2)[0], err)
}

// answerError turns an error answer into an error with the node's own
// text, matching the sentinel its kind names; without one (an older node),
// the sentinel of the status: ErrUnavailable for 503, ErrBadRequest for
// 400, ErrNoBuild for 404.
func answerError(code int, body []byte) error {
	var e apiError
	if json.Unmarshal(body, &e) != nil || e.Error == "" {
		e.Error = http.StatusText(code)
	}
	for _, k := range errorKinds {
		if k.kind == e.Kind {
			return &remoteError{msg: e.Error, kind: k.err}
		}
	}
	switch code {
	case http.StatusServiceUnavailable:
		return &remoteError{msg: e.Error, kind: ErrUnavailable}
	case http.StatusBadRequest:
		return &remoteError{msg: e.Error, kind: ErrBadRequest}
	case http.StatusNotFound:
		return &remoteError{msg: e.Error, kind: ErrNoBuild}
	}
	return errors.New(e.Error)
}

// remoteError is an error the node answered, whose text already names its
// kind.
type remoteError struct {
	msg  string
	kind error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.kind }
