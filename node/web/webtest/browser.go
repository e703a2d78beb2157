package webtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/tbfg/tbfg-node/internal/citest"
)

// Browser is a headless Chromium (Debian's chromium) with a fresh profile,
// driven through the DevTools protocol, that collects the console messages
// of the pages it opens. The status server's browser tests use it, against
// an in-memory backend and against real nodes alike.
type Browser struct {
	ctx  context.Context
	dir  string // screenshots, "" for none
	mu   sync.Mutex
	msgs []chromedp.ConsoleMessage
}

// Chromium finds the browser, or skips the test (fails it under CI=true).
func Chromium(t testing.TB) string {
	t.Helper()
	return citest.Tool(t, "chromium", "chromium")
}

// NewBrowser starts a browser that the test's cleanup stops. Screenshots go
// to the directory named by $TBFG_SCREENSHOTS; without it, none are taken.
func NewBrowser(t testing.TB) *Browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(Chromium(t)), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.NoFirstRun, chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	b := &Browser{ctx: ctx, dir: os.Getenv("TBFG_SCREENSHOTS")}
	messages := chromedp.Console(ctx)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.msgs = append(b.msgs, m)
			b.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		<-done
	})
	return b
}

// Errors returns the console errors and exceptions so far.
func (b *Browser) Errors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.msgs {
		if m.Type == chromedp.ConsoleError || m.IsException() {
			out = append(out, fmt.Sprintf("%s %s:%d %s", m.Type, m.URL, m.Line+1, m.Text))
		}
	}
	return out
}

// Open loads a page and waits, up to 30 seconds, until live.js has
// connected its event stream (the #live marker shows).
func (b *Browser) Open(t testing.TB, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.ID("live"))); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
}

// Eval evaluates a JavaScript expression whose value is a string.
func (b *Browser) Eval(t testing.TB, js string) string {
	t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// WaitFor polls a JavaScript predicate in the page until it holds, up to
// timeout.
func (b *Browser) WaitFor(t testing.TB, what, js string, timeout time.Duration) {
	t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(timeout))); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// Screenshot saves the whole page as NAME.png in the screenshot directory,
// if there is one, and returns its file name ("" if none).
func (b *Browser) Screenshot(t testing.TB, name string) string {
	t.Helper()
	if b.dir == "" {
		return ""
	}
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	file := filepath.Join(b.dir, name+".png")
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, png, 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}
