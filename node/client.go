package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"syscall"
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
	socket := filepath.Join(dataDir, AdminSocket)
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

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

func (c *Client) call(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://node"+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("%w on %s: start it with tbfg-node run", ErrNotRunning, c.socket)
		}
		return fmt.Errorf("admin API %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("admin API %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return answerError(resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("admin API %s: bad answer: %w", path, err)
	}
	return nil
}

// answerError turns an error answer into an error, ErrUnavailable for 503.
func answerError(code int, body []byte) error {
	var e apiError
	if json.Unmarshal(body, &e) != nil || e.Error == "" {
		e.Error = http.StatusText(code)
	}
	if code == http.StatusServiceUnavailable {
		return fmt.Errorf("%w: %s", ErrUnavailable, e.Error)
	}
	return errors.New(e.Error)
}
