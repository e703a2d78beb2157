package publish

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// wrkDuration is how long each wrk run lasts; each side runs twice per
// iteration.
const wrkDuration = "2s"

// BenchmarkServerVsNginx measures, with wrk, narinfo requests per second and
// NAR throughput (uncompressed and zstd) from the server, and from nginx
// serving the same bytes as static files in the same run, and reports the
// ratio of each pair. Targets: narinfo ratio ≥ 1, nar ratio ≥ 0.8.
//
//	go test -run '^$' -bench ServerVsNginx ./substitutes/publish/
//
// Each wrk run lasts wrkDuration, with 2 threads and 32 connections for
// narinfos, 8 for NARs; the NAR is 16 MiB.
func BenchmarkServerVsNginx(b *testing.B) {
	wrk := requireTool(b, "wrk", "wrk")
	nginxBin := requireTool(b, "nginx", "nginx")
	k := newKeys(b)
	it := makeItem(b, k, "bench-item", map[string][]byte{"data": benchData(16 << 20)})
	mem := NewMemSource()
	mem.Add(it.ni, it.nar)
	s := newServer(b, mem, func(c *Config) { c.Logger = nil })
	ours := start(b, s)
	p := it.ni.StorePath
	eventually(b, "compressed NARs", func() bool {
		ni, _ := fetchNarinfo(b, ours, p)
		return len(ni.Files) == 3
	})

	www := filepath.Join(b.TempDir(), "www")
	paths := map[string]string{
		"narinfo": "/" + p.HashPart() + ".narinfo",
		"nar":     "/nar/" + p.Base(),
		"zstd":    "/nar/zstd/" + p.Base(),
	}
	sizes := map[string]float64{}
	for name, path := range paths {
		resp, body, err := get(b, "GET", ours+path)
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("%s: %v %v", path, resp, err)
		}
		writeFile(b, filepath.Join(www, path), body)
		sizes[name] = float64(len(body))
	}
	theirs := startNginx(b, nginxBin, www)

	for _, tc := range []struct{ name, conns string }{{"narinfo", "32"}, {"nar", "8"}, {"zstd", "8"}} {
		b.Run(tc.name, func(b *testing.B) {
			var ourRate, nginxRate float64
			for b.Loop() {
				// Alternate who goes first, so that the load of the
				// machine weighs on both alike.
				ourRate += runWrk(b, wrk, tc.conns, ours+paths[tc.name])
				nginxRate += runWrk(b, wrk, tc.conns, theirs+paths[tc.name])
				nginxRate += runWrk(b, wrk, tc.conns, theirs+paths[tc.name])
				ourRate += runWrk(b, wrk, tc.conns, ours+paths[tc.name])
			}
			n := float64(2 * b.N)
			if tc.name == "narinfo" {
				b.ReportMetric(ourRate/n, "req/s")
				b.ReportMetric(nginxRate/n, "nginx-req/s")
			} else {
				b.ReportMetric(ourRate*sizes[tc.name]/n/1e6, "MB/s")
				b.ReportMetric(nginxRate*sizes[tc.name]/n/1e6, "nginx-MB/s")
			}
			b.ReportMetric(ourRate/nginxRate, "ratio")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// benchData is n bytes that compress about as well as a typical package: a
// mix of text and random bytes.
func benchData(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	var buf bytes.Buffer
	for i := 0; buf.Len() < n; i++ {
		if i%4 == 0 {
			for range 512 {
				buf.WriteByte(byte(r.Uint32()))
			}
		} else {
			fmt.Fprintf(&buf, "line %d of /gnu/store/some-package/share/doc/file.txt\n", i)
		}
	}
	return buf.Bytes()[:n]
}

// requireTool finds a program, skipping the benchmark without it (failing
// under CI).
func requireTool(b *testing.B, name, pkg string) string {
	b.Helper()
	for _, p := range []string{name, "/usr/sbin/" + name} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	msg := "needs " + name + ": apt-get install " + pkg
	if os.Getenv("CI") != "" {
		b.Fatal(msg)
	}
	b.Skip(msg)
	return ""
}

var wrkRate = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)

// runWrk runs wrk against url and returns the requests per second.
func runWrk(b *testing.B, wrk, conns, url string) float64 {
	b.Helper()
	out, err := exec.Command(wrk, "-t2", "-c"+conns, "-d"+wrkDuration, "--timeout", "30s", url).CombinedOutput()
	if err != nil {
		b.Fatalf("wrk %s: %v\n%s", url, err, out)
	}
	if bytes.Contains(out, []byte("Non-2xx")) || bytes.Contains(out, []byte("Socket errors")) {
		b.Fatalf("wrk %s: errors\n%s", url, out)
	}
	m := wrkRate.FindSubmatch(out)
	if m == nil {
		b.Fatalf("wrk %s: no rate in\n%s", url, out)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		b.Fatal(err)
	}
	return v
}

// startNginx runs nginx in the foreground with a private configuration that
// serves www on a free 127.0.0.1 port, until the benchmark ends; it returns
// nginx's URL.
func startNginx(b *testing.B, bin, www string) string {
	b.Helper()
	dir := b.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	conf := strings.NewReplacer("DIR", dir, "WWW", www, "ADDR", addr).Replace(nginxConf)
	writeFile(b, filepath.Join(dir, "nginx.conf"), []byte(conf))
	cmd := exec.Command(bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "error.log"))
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return "http://" + addr
		}
		select {
		case err := <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			b.Fatalf("nginx exited: %v\n%s%s", err, stderr.Bytes(), log)
		default:
		}
		if time.Now().After(deadline) {
			b.Fatalf("nginx does not listen on %s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

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
