package wrkbench

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// StartNginx runs nginx (the program bin) in the foreground with a private
// configuration that serves the files under www on a free 127.0.0.1 port,
// until the benchmark ends, and returns its URL. The configuration is a
// production-like static file server: a worker per core, sendfile, no
// access log.
func StartNginx(tb testing.TB, bin, www string) string {
	tb.Helper()
	dir := tb.TempDir()
	addr := FreeAddr(tb)
	conf := strings.NewReplacer("DIR", dir, "WWW", www, "ADDR", addr).Replace(nginxConf)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "error.log"))
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	tb.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	err := WaitListening(addr, 10*time.Second, exited)
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		tb.Fatalf("nginx: %v\n%s%s", err, stderr.Bytes(), log)
	}
	return "http://" + addr
}

// FreeAddr returns a 127.0.0.1 address with a port free a moment ago.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// WaitListening polls addr until it accepts a TCP connection, the process
// whose exit exited reports has exited, or timeout passes.
func WaitListening(addr string, timeout time.Duration, exited <-chan error) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			return c.Close()
		}
		select {
		case err := <-exited:
			return &exitError{addr: addr, err: err}
		default:
		}
		if time.Now().After(deadline) {
			return &exitError{addr: addr}
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
	}
}

// exitError says a server never listened on its address.
type exitError struct {
	addr string
	err  error // the process's exit, or nil on a timeout
}

func (e *exitError) Error() string {
	if e.err != nil {
		return "exited before listening on " + e.addr + ": " + e.err.Error()
	}
	return "does not listen on " + e.addr
}

func (e *exitError) Unwrap() error { return e.err }

// nginxConf serves WWW on ADDR only, with everything nginx writes under DIR.
// keepalive_requests is raised to match Go's unlimited keep-alive.
const nginxConf = `daemon off;
master_process on;
worker_processes auto;
user root root;
pid DIR/nginx.pid;
error_log DIR/error.log warn;
events { worker_connections 1024; }
http {
	access_log off;
	sendfile on;
	tcp_nopush on;
	keepalive_requests 100000000;
	client_body_temp_path DIR/body;
	proxy_temp_path DIR/proxy;
	fastcgi_temp_path DIR/fastcgi;
	uwsgi_temp_path DIR/uwsgi;
	scgi_temp_path DIR/scgi;
	types { text/x-nix-narinfo narinfo; }
	default_type application/x-nix-archive;
	server {
		listen ADDR;
		root WWW;
	}
}
`
