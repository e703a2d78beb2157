package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/node/adminapi"
	"github.com/tbfg/tbfg-node/node/datadir"
)

// TestNodeStatusServer runs a one-node mesh with its status server on
// loopback: it becomes ready, answers its API and metrics with the node's
// figures, shows no secret, and refuses anything but GET and HEAD.
func TestNodeStatusServer(t *testing.T) {
	dir := t.TempDir()
	r := startNode(t, loopbackConfig(t, "n1", ModeInit, dir))
	base := "http://" + r.n.HTTPAddr()
	if !strings.HasPrefix(r.n.HTTPAddr(), "127.0.0.1:") {
		t.Fatalf("status server on %q, want loopback", r.n.HTTPAddr())
	}
	waitUntil(t, "/readyz ready", func() error {
		code, body := fetch(t, http.MethodGet, base+"/readyz")
		if code != http.StatusOK {
			return fmt.Errorf("/readyz: %d %s", code, body)
		}
		return nil
	})
	if code, body := fetch(t, http.MethodGet, base+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	code, body := fetch(t, http.MethodGet, base+"/api/v1/status")
	var st adminapi.Status
	if err := json.Unmarshal([]byte(body), &st); code != http.StatusOK || err != nil || st.ID != r.n.ID() || st.Leader != r.n.ID() {
		t.Fatalf("/api/v1/status: %d %v %s", code, err, body)
	}
	code, body = fetch(t, http.MethodGet, base+"/api/v1/nodes")
	var nodes []adminapi.NodeView
	if err := json.Unmarshal([]byte(body), &nodes); code != http.StatusOK || err != nil || len(nodes) != 1 || !nodes[0].Leader || !nodes[0].Self {
		t.Fatalf("/api/v1/nodes: %d %v %s", code, err, body)
	}
	if _, page := fetch(t, http.MethodGet, base+"/"); !strings.Contains(page, "· leader <code") || strings.Contains(page, "no leader known") {
		t.Errorf("the overview does not show the leader:\n%s", page)
	}
	waitUntil(t, "metrics of a leader", func() error {
		_, m := fetch(t, http.MethodGet, base+"/metrics")
		for _, want := range []string{"tbfg_raft_leader 1", `tbfg_mesh_members{suffrage="voter"} 1`, "tbfg_replication_backlog 0"} {
			if !strings.Contains(m, want) {
				return fmt.Errorf("/metrics lacks %q", want)
			}
		}
		return nil
	})
	secret := r.n.Secret()
	for _, path := range []string{"/", "/api/v1/status", "/api/v1/nodes", "/metrics", "/builds", "/failures"} {
		if code, body := fetch(t, http.MethodGet, base+path); code != http.StatusOK || strings.Contains(body, secret) {
			t.Errorf("GET %s: %d, shows the secret: %v", path, code, strings.Contains(body, secret))
		}
	}
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions} {
		if code, _ := fetch(t, method, base+"/api/v1/status"); code != http.StatusMethodNotAllowed {
			t.Errorf("%s /api/v1/status: %d, want 405", method, code)
		}
	}
}

// TestNodeHTTPListenBusy: a busy --http-listen port fails the start with an
// error naming the flag, and leaves nothing behind.
func TestNodeHTTPListenBusy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	cfg := loopbackConfig(t, "n1", ModeInit, dir)
	cfg.HTTPListen = ln.Addr().String()
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Run(ctx); err == nil || !strings.Contains(err.Error(), "--http-listen "+ln.Addr().String()) {
		t.Fatalf("Run = %v, want an error naming --http-listen", err)
	}
	for _, f := range []string{datadir.AdminSocket, datadir.SecretFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left after a failed start: %v", f, err)
		}
	}
}

// fetch makes one request and returns the status and body.
func fetch(t *testing.T, method, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return resp.StatusCode, string(b)
}
