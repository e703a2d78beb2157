package integration

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/node/web/webtest"
)

// browseLive drives a headless Chromium through the status pages of a host
// while slow-0 runs on another one. With TBFG_SCREENSHOTS=DIR it saves a
// screenshot of each page there.
func browseLive(t *testing.T, hosts []*host, ids map[*host]string, g *statusGraph) {
	slow, broken := g.ids["slow-0"], g.ids["broken"]
	var runsOn string
	waitFor(t, 2*time.Minute, "slow-0 running and broken failed", func() error {
		bs, err := statusBuilds(hosts[1])
		if err != nil {
			return err
		}
		state := map[uint64]statusBuild{}
		for _, b := range bs {
			state[b.ID] = b
		}
		if b := state[slow]; b.State != "running" {
			return fmt.Errorf("slow-0 is %q", b.State)
		}
		if b := state[broken]; b.State != "failed" {
			return fmt.Errorf("broken is %q", b.State)
		}
		runsOn = state[slow].Node
		return nil
	})
	var viewer *host
	for _, h := range hosts {
		if ids[h] != runsOn {
			viewer = h
			break
		}
	}
	t.Logf("slow-0 (build %d) runs on %s; the browser views %s", slow, runsOn, viewer.name)
	url := forward(t, viewer)
	br := webtest.NewBrowser(t)

	// The overview tails slow-0's log live.
	br.Open(t, url+"/")
	tail := fmt.Sprintf(`document.getElementById("tail-%d")`, slow)
	br.WaitFor(t, "slow-0's tail on the overview", tail+` !== null && /line \d+/.test(`+tail+`.textContent)`, 30*time.Second)
	first := lastLine(t, br, tail)
	br.WaitFor(t, "slow-0's tail to move on", fmt.Sprintf(`/line %d/.test(%s.textContent)`, first+2, tail), 30*time.Second)
	br.Screenshot(t, "overview")

	// Its page appends its log live, fetched from the host that runs it.
	br.Open(t, fmt.Sprintf("%s/builds/%d", url, slow))
	log := `document.getElementById("log")`
	br.WaitFor(t, "slow-0's log on its page", `/line \d+/.test(`+log+`.textContent)`, 30*time.Second)
	first = lastLine(t, br, log)
	br.WaitFor(t, "slow-0's log to grow", fmt.Sprintf(`/line %d\n/.test(%s.textContent)`, first+2, log), 30*time.Second)
	if n := br.Eval(t, `String(document.querySelectorAll("#log *").length)`); n != "0" {
		t.Errorf("slow-0's live log made %s elements", n)
	}
	br.Screenshot(t, "build-running")

	// The failed build's page shows its log as text.
	br.Open(t, fmt.Sprintf("%s/builds/%d", url, broken))
	if got := br.Eval(t, log+`.textContent`); !strings.Contains(got, scriptLine) {
		t.Errorf("broken's log lacks its %s line as text: %q", scriptLine, got)
	}
	if n := br.Eval(t, `String(document.querySelectorAll("#log *").length + document.scripts.length)`); n != "1" {
		t.Errorf("broken's page has %s elements in its log plus scripts; want only live.js", n)
	}
	br.Screenshot(t, "build-failed")

	for _, p := range []struct{ name, path string }{
		{"builds", "/builds"}, {"builds-failed-dependency", "/builds?state=failed-dependency"},
		{"builds-of-node", "/builds?node=" + runsOn}, {"failures", "/failures"},
		{"build-queued", fmt.Sprintf("/builds/%d", g.ids["top"])},
	} {
		br.Open(t, url+p.path)
		br.Screenshot(t, p.name)
	}

	// On the overview, slow-0 goes from running to succeeded without a
	// reload.
	br.Open(t, url+"/")
	br.Eval(t, `window.notReloaded = "yes"`)
	if got := br.Eval(t, fmt.Sprintf(`(document.querySelector('#running [data-build="%d"] .state') || {}).textContent || ""`, slow)); got != "running" {
		t.Errorf("slow-0 shows %q among the running builds", got)
	}
	br.WaitFor(t, "slow-0 to show succeeded",
		fmt.Sprintf(`[...document.querySelectorAll('[data-build="%d"] .state')].some(e => e.textContent === "succeeded")`, slow),
		time.Duration(slowLines+60)*time.Second)
	br.WaitFor(t, "the running section to drop slow-0",
		fmt.Sprintf(`document.querySelector('#running [data-build="%d"]') === null`, slow), 30*time.Second)
	if br.Eval(t, `window.notReloaded`) != "yes" {
		t.Error("the overview was reloaded")
	}
	br.Screenshot(t, "overview-after")
	if errs := br.Errors(); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}

// lastLine is the number of the last "line N" in the text of the element
// js names.
func lastLine(t *testing.T, br *webtest.Browser, js string) int {
	t.Helper()
	v := br.Eval(t, `(() => { const m = [...`+js+`.textContent.matchAll(/line (\d+)/g)]; return m.length ? m[m.length-1][1] : "" })()`)
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("no line number in %s: %q", js, v)
	}
	return n
}

// forward relays connections to a loopback port of this namespace, which a
// browser here can open, to h's status server on h's own loopback. It
// returns the port's URL; the relay stops at the end of the test.
func forward(t *testing.T, h *host) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				relay(ctx, h, c)
			}()
		}
	}()
	t.Cleanup(func() {
		cancel()
		ln.Close()
		wg.Wait()
	})
	return "http://" + ln.Addr().String()
}

// relay copies between c and a new connection to h's status server until
// either side closes or ctx ends.
func relay(ctx context.Context, h *host, c net.Conn) {
	defer c.Close()
	up, err := h.ns.DialContext(ctx, "tcp", "127.0.0.1:"+statusPort)
	if err != nil {
		return
	}
	defer up.Close()
	stop := context.AfterFunc(ctx, func() {
		c.Close()
		up.Close()
	})
	defer stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(up, c)
		up.Close()
	}()
	io.Copy(c, up)
	c.Close()
	<-done
}
