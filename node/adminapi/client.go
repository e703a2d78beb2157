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
	"syscall"

	"github.com/tbfg/tbfg-node/node/datadir"
)

// maxAnswer bounds an admin API answer the client reads.
const maxAnswer = 16 << 20

// Client calls a local node's admin API over its unix socket.
type Client struct {
	socket string
	hc     *http.Client
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
	return &Client{socket: socket, hc: &http.Client{Transport: tr}}
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

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

func (c *Client) call(ctx context.Context, method, path string, out any) error {
	return c.do(ctx, method, path, nil, out)
}

// do sends in, if not nil, as the JSON body of a request and decodes the
// answer into out.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://node"+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("%w on %s: start it with tbfg-node run", ErrNotRunning, c.socket)
		}
		return fmt.Errorf("admin API %s: %w", path, err)
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

// answerError turns an error answer into an error: ErrUnavailable for 503;
// for 400 and 404 the node's own text, matching ErrBadRequest and ErrNoBuild.
func answerError(code int, body []byte) error {
	var e apiError
	if json.Unmarshal(body, &e) != nil || e.Error == "" {
		e.Error = http.StatusText(code)
	}
	switch code {
	case http.StatusServiceUnavailable:
		return fmt.Errorf("%w: %s", ErrUnavailable, e.Error)
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
