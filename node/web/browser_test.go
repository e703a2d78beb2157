package web_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/mesh"
	"github.com/tbfg/tbfg-node/node/adminapi"
	"github.com/tbfg/tbfg-node/node/web/webtest"
	"github.com/tbfg/tbfg-node/scheduler"
)

// The browser test drives Debian's Chromium, headless, against the server
// over loopback: every page loads without a console error, a build goes
// from running to succeeded on / without a reload, and a failed build's
// page shows its log escaped. With TBFG_SCREENSHOTS=DIR it saves a
// screenshot of each page there.

// farm is a backend that looks like a small farm at work: three members,
// builds of two systems finished over the last hours, some running with
// logs, failures and what they block, and a queue.
type farm struct {
	*webtest.Backend
	running []uint64          // ids of the running builds
	on      map[uint64]string // the node of each running build
	failed  uint64            // a build that failed with a <script> line in its log
	now     time.Time
}

var farmNodes = []string{
	"12D3KooWQm5xL7dYb2s1Vb8e3cJzP4kHn6TfWqR9aGxE2yUu7pLd",
	"12D3KooWHk2R8pN4tZc6Ye1sJvQ9mB3xL5wD7fUa2gT8rKq4nXbV",
	"12D3KooWBz7cM1eV5yT3kQ8wN2pR6jH4dF9sL1aX7uG3vE5mPqYt",
}

func newFarm(t *testing.T) *farm {
	t.Helper()
	b := webtest.New()
	f := &farm{Backend: b, on: map[uint64]string{}}
	clock := webtest.Start
	b.Now = func() time.Time { return clock }
	must(t, b.Join(farmNodes[0], 4, x86, "i686-linux"))
	must(t, b.Join(farmNodes[1], 2, x86))
	must(t, b.Join(farmNodes[2], 2, arm))
	names := []string{"gcc-toolchain-14.2", "glibc-2.41", "coreutils-9.5", "bash-5.2.37", "python-3.12.9",
		"guile-3.0.10", "openssl-3.4.1", "curl-8.12.1", "git-2.48.1", "emacs-30.1", "perl-5.40.1", "zstd-1.5.6",
		"ncurses-6.5", "readline-8.2", "sqlite-3.48.0", "libffi-3.4.6", "gmp-6.3.0", "mpfr-4.2.1", "icu4c-76.1",
		"libxml2-2.13.5", "nss-3.108", "gtk-3.24.49", "mesa-25.0.1", "rust-1.85.0", "linux-libre-6.13.5"}
	var drvs []scheduler.Derivation
	for i, n := range names {
		sys := x86
		if i%5 == 3 {
			sys = arm
		}
		var ins []string
		if i > 0 {
			ins = append(ins, names[0])
		}
		drvs = append(drvs, webtest.Drv(n, sys, ins...))
	}
	drvs = append(drvs, webtest.Drv("gnome-shell-47.4", x86, "gtk-3.24.49", "mesa-25.0.1"))
	ids, err := b.Submit(drvs...)
	must(t, err)
	nodeFor := func(i int) string {
		if drvs[i].System == arm {
			return farmNodes[2]
		}
		return farmNodes[i%2]
	}
	// Over five hours, most builds run and succeed; two fail.
	for i, id := range ids {
		if i >= len(names) || i >= 16 && names[i] != "icu4c-76.1" && names[i] != "nss-3.108" {
			continue
		}
		clock = webtest.Start.Add(time.Duration(i) * 13 * time.Minute)
		must(t, b.Run(id, nodeFor(i)))
		b.AppendLog(id, fmt.Sprintf("building %s...\nphase `configure' succeeded\nphase `build' succeeded\n", names[i]))
		clock = clock.Add(time.Duration(3+i%7) * time.Minute)
		if names[i] == "icu4c-76.1" || names[i] == "nss-3.108" {
			f.on[id] = nodeFor(i)
			continue
		}
		must(t, b.Succeed(id, nodeFor(i)))
	}
	clock = clock.Add(4 * time.Minute)
	f.failed = ids[indexOf(names, "gtk-3.24.49")]
	must(t, b.Run(f.failed, farmNodes[0]))
	b.AppendLog(f.failed, "phase `build' succeeded\nrunning test suite\n"+scriptLine+
		"\nFAIL: a11y/label.test (exit status: 1) & 3 more\nerror: in phase 'check': uncaught exception\n")
	must(t, b.Fail(f.failed, farmNodes[0], scheduler.ReasonBuildError, "builder for gtk-3.24.49.drv failed with exit code 1"))
	// Two builds run now, with logs.
	for _, n := range []string{"icu4c-76.1", "nss-3.108"} {
		id := ids[indexOf(names, n)]
		f.running = append(f.running, id)
		b.AppendLog(id, "make[2]: Entering directory '/tmp/guix-build-"+n+".drv-0/source'\ncc -O2 -c unicode/normalizer2.cpp\n")
	}
	f.now = clock.Add(90 * time.Second)
	b.SetNodes([]adminapi.NodeView{
		nodeView(farmNodes[0], true, true, f.now, mesh.NodeStatus{Systems: []string{x86, "i686-linux"}, MaxBuilds: 4,
			RunningBuilds: 1, Load1: 3.42, Cores: 16, StoreFreeBytes: 812 << 30, Version: "v0.9.0"}),
		nodeView(farmNodes[1], false, false, f.now.Add(-3*time.Second), mesh.NodeStatus{Systems: []string{x86},
			MaxBuilds: 2, RunningBuilds: 1, Load1: 1.97, Cores: 4, StoreFreeBytes: 61 << 30, Version: "v0.9.0"}),
		nodeView(farmNodes[2], false, false, f.now.Add(-4*time.Second), mesh.NodeStatus{Systems: []string{arm},
			MaxBuilds: 2, Load1: 0.12, Cores: 4, StoreFreeBytes: 23 << 30, Version: "v0.8.2"}),
	})
	b.SetStatus(adminapi.Status{ID: farmNodes[0], Leader: farmNodes[0], State: "running", Members: 3, Voters: 3,
		NodeStatus: mesh.NodeStatus{SubstituteURL: "http://127.0.0.1:8761"}})
	return f
}

func nodeView(id string, self, leader bool, seen time.Time, st mesh.NodeStatus) adminapi.NodeView {
	return adminapi.NodeView{ID: id, Suffrage: "voter", Self: self, Leader: leader, LastSeen: &seen, NodeStatus: &st}
}

func indexOf(xs []string, x string) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	panic(x)
}

func TestBrowser(t *testing.T) {
	f := newFarm(t)
	now := f.now
	s := newServerAt(t, f.Backend, func() time.Time { return now })
	url := serve(t, s)
	br := webtest.NewBrowser(t)

	for _, p := range []struct{ name, path string }{
		{"builds", "/builds"}, {"builds-failed", "/builds?state=failed-dependency"},
		{"failures", "/failures"}, {"build-running", fmt.Sprintf("/builds/%d", f.running[0])},
	} {
		br.Open(t, url+p.path)
		br.Screenshot(t, p.name)
	}

	// A failed build's page shows its log as text: the <script> line is in
	// the log's text, and no script element came of it.
	br.Open(t, fmt.Sprintf("%s/builds/%d", url, f.failed))
	if got := br.Eval(t, `document.getElementById("log").textContent`); !strings.Contains(got, scriptLine) {
		t.Fatalf("the failed build's log lacks its <script> line as text: %q", got)
	}
	if n := br.Eval(t, `String(document.querySelectorAll("#log *").length + document.scripts.length)`); n != "1" {
		t.Fatalf("the log made elements: %s elements in #log plus scripts", n)
	}
	br.Screenshot(t, "build-failed")

	// On the overview, a running build becomes succeeded without a reload,
	// and its log tail follows the log.
	br.Open(t, url+"/")
	br.Eval(t, `window.notReloaded = "yes"`)
	id := f.running[0]
	running := fmt.Sprintf(`document.querySelector('#running [data-build="%d"] .state')`, id)
	if got := br.Eval(t, running+`.textContent`); got != "running" {
		t.Fatalf("build %d shows %q on the overview", id, got)
	}
	f.AppendLog(id, "cc -O2 -c unicode/uniset.cpp\n")
	br.WaitFor(t, "the live log tail", fmt.Sprintf(`document.getElementById("tail-%d").textContent.includes("uniset.cpp")`, id), 20*time.Second)
	br.Screenshot(t, "overview")
	before := br.Eval(t, `document.querySelector(".index").textContent`)
	must(t, f.Succeed(id, f.on[id]))
	br.WaitFor(t, "the header's index to follow the events",
		fmt.Sprintf(`document.querySelector(".index").textContent !== %q`, before), 20*time.Second)
	br.WaitFor(t, "the build to show succeeded",
		fmt.Sprintf(`[...document.querySelectorAll('[data-build="%d"] .state')].some(e => e.textContent === "succeeded")`, id),
		20*time.Second)
	br.WaitFor(t, "the running section to drop the build", running+` === null`, 20*time.Second)
	if br.Eval(t, `window.notReloaded`) != "yes" {
		t.Fatal("the page was reloaded")
	}
	br.Screenshot(t, "overview-after")

	// A running build's page appends its log live, as text.
	br.Open(t, fmt.Sprintf("%s/builds/%d", url, f.running[1]))
	f.AppendLog(f.running[1], "<script>document.title='pwned'</script> live line\n")
	br.WaitFor(t, "the live log line", `document.getElementById("log").textContent.includes("live line")`, 20*time.Second)
	if n := br.Eval(t, `String(document.querySelectorAll("#log *").length)`); n != "0" {
		t.Fatalf("the live log made %s elements", n)
	}
	if title := br.Eval(t, `document.title`); strings.Contains(title, "pwned") {
		t.Fatal("a log line ran as script")
	}
	// This node runs that build: its page shows the timeline so far, and
	// the builder's last steps appear without a reload when it succeeds.
	id = f.running[1]
	step := func(d time.Duration) *time.Time { v := f.now.Add(-time.Minute + d); return &v }
	tl := adminapi.Timeline{Attempt: 1, Seen: step(0), Fetched: step(3 * time.Millisecond), Exec: step(5 * time.Millisecond)}
	f.SetTimeline(id, tl)
	br.Open(t, fmt.Sprintf("%s/builds/%d", url, id))
	br.Eval(t, `window.notReloaded = "yes"`)
	steps := `[...document.querySelectorAll("#timeline tr[data-step]")].map(e => e.dataset.step).join(" ")`
	if got := br.Eval(t, steps); got != "submitted allocated seen fetched exec" {
		t.Fatalf("timeline of the running build: %q", got)
	}
	tl.Exited, tl.Published, tl.Committed = step(40*time.Second), step(41*time.Second), step(41*time.Second+12*time.Millisecond)
	f.SetTimeline(id, tl)
	must(t, f.Succeed(id, f.on[id]))
	br.WaitFor(t, "the timeline to show the build's end",
		steps+` === "submitted allocated seen fetched exec exited published committed"`, 20*time.Second)
	if got := br.Eval(t, `document.querySelector('#timeline tr[data-step="committed"] .delta').textContent`); got != "+12.0 ms" {
		t.Fatalf("committed step shows %q, want +12.0 ms", got)
	}
	if br.Eval(t, `window.notReloaded`) != "yes" {
		t.Fatal("the page was reloaded")
	}
	br.Screenshot(t, "build-timeline")

	if errs := br.Errors(); len(errs) > 0 {
		t.Fatalf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}
