package wrkbench

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/citest"
)

// Duration is how long each wrk run lasts; each side runs twice per
// iteration of a Compare benchmark.
const Duration = "2s"

// RequireTool finds a program in $PATH or /usr/sbin, skipping the benchmark
// without it, or failing it under CI=true (citest). pkg is the Debian
// package that has it.
func RequireTool(tb testing.TB, name, pkg string) string {
	tb.Helper()
	return citest.Tool(tb, name, pkg)
}

// Target is one URL path measured on both servers.
type Target struct {
	// Name names the sub-benchmark, e.g. "narinfo".
	Name string
	// Path is the URL path, e.g. "/nar/zstd/<base>".
	Path string
	// Conns is wrk's number of connections.
	Conns int
	// Size is the body size in bytes; 0 reports requests per second,
	// else megabytes per second.
	Size int
	// InProcess says the server under test runs in the benchmark's own
	// process: Compare then also reports the process's CPU time (user and
	// system) per request of ours, self-cpu-us/req, a figure the load of a
	// shared machine skews far less than rates. It counts the kernel's
	// loopback work done on the sender's behalf too.
	InProcess bool
}

// Mirror GETs each path from base and writes the body under www at the same
// path, so that a static server rooted at www answers the same bytes. It
// returns the body sizes by path.
func Mirror(tb testing.TB, base, www string, paths ...string) map[string]int {
	tb.Helper()
	sizes := map[string]int{}
	client := &http.Client{Timeout: time.Minute}
	for _, p := range paths {
		body, err := get(client, base+p)
		if err != nil {
			tb.Fatal(err)
		}
		name := filepath.Join(www, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(name, body, 0o644); err != nil {
			tb.Fatal(err)
		}
		sizes[p] = len(body)
	}
	return sizes
}

func get(c *http.Client, url string) ([]byte, error) {
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return body, err
}

// Compare runs one sub-benchmark per target: wrk against ours and nginx,
// alternating who goes first so that the load of the machine weighs on
// both alike. It reports our rate, nginx's and their ratio,
// x-faster-than-nginx (above 1: ours is faster).
func Compare(b *testing.B, wrk, ours, nginx string, targets []Target) {
	for _, tc := range targets {
		b.Run(tc.Name, func(b *testing.B) {
			var ourRate, nginxRate float64
			var cpu time.Duration
			for b.Loop() {
				c0 := selfCPU()
				ourRate += Run(b, wrk, tc.Conns, ours+tc.Path)
				cpu += selfCPU() - c0
				nginxRate += Run(b, wrk, tc.Conns, nginx+tc.Path)
				nginxRate += Run(b, wrk, tc.Conns, nginx+tc.Path)
				c0 = selfCPU()
				ourRate += Run(b, wrk, tc.Conns, ours+tc.Path)
				cpu += selfCPU() - c0
			}
			if tc.InProcess && ourRate > 0 {
				// Rates are per second of a wrk run; each run lasts Duration.
				d, _ := time.ParseDuration(Duration)
				b.ReportMetric(float64(cpu.Microseconds())/(ourRate*d.Seconds()), "self-cpu-us/req")
			}
			n := float64(2 * b.N)
			if tc.Size == 0 {
				b.ReportMetric(ourRate/n, "req/s")
				b.ReportMetric(nginxRate/n, "nginx-req/s")
			} else {
				b.ReportMetric(ourRate*float64(tc.Size)/n/1e6, "MB/s")
				b.ReportMetric(nginxRate*float64(tc.Size)/n/1e6, "nginx-MB/s")
			}
			b.ReportMetric(ourRate/nginxRate, "x-faster-than-nginx")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// selfCPU is the user and system CPU time this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var wrkRate = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)

// Run runs wrk for Duration with 2 threads and conns connections against
// url and returns the requests per second. Any non-2xx answer or socket
// error fails the benchmark.
func Run(tb testing.TB, wrk string, conns int, url string) float64 {
	tb.Helper()
	out, err := exec.Command(wrk, "-t2", "-c"+strconv.Itoa(conns), "-d"+Duration, "--timeout", "30s", url).CombinedOutput()
	if err != nil {
		tb.Fatalf("wrk %s: %v\n%s", url, err, out)
	}
	if bytes.Contains(out, []byte("Non-2xx")) || bytes.Contains(out, []byte("Socket errors")) {
		tb.Fatalf("wrk %s: errors\n%s", url, out)
	}
	m := wrkRate.FindSubmatch(out)
	if m == nil {
		tb.Fatalf("wrk %s: no rate in\n%s", url, out)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}
