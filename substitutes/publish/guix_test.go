package publish

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/tbfg/tbfg-node/internal/guixtest"
	"github.com/tbfg/tbfg-node/internal/nixtest"
	"github.com/tbfg/tbfg-node/store"
)

// The tests in this file have the real guix-daemon (a private one,
// guixtest.StartDaemon, that trusts only the test builder's key) substitute
// a closure built by Nix from the server, as a machine of the farm's LAN
// would.

// guixClient is a private guix-daemon that trusts b's Guix key only.
func guixClient(t *testing.T, b *nixBuilder) *guixtest.PrivateDaemon {
	d := guixtest.StartDaemon(t, guixtest.DaemonOptions{})
	writeFile(t, d.ACLFile(), b.keys.acl().Marshal())
	t.Cleanup(func() { deleteFromStore(t, d, b.closure) })
	return d
}

// deleteFromStore deletes what a test substituted into the shared store,
// where it would otherwise stay; paths that are not there are skipped.
func deleteFromStore(t *testing.T, d *guixtest.PrivateDaemon, paths []store.Path) {
	args := []string{"gc", "--delete"}
	for p := range d.PathInfos(strs(paths)...) {
		args = append(args, p)
	}
	if len(args) == 2 {
		return
	}
	if _, stderr, err := d.Run(args...); err != nil {
		t.Errorf("guix gc --delete: %v\n%s", err, stderr)
	}
}

func strs(paths []store.Path) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = string(p)
	}
	return out
}

// guixBuild has d substitute p from url, as `guix build
// --substitute-urls=URL PATH` does, and returns guix's error output.
func guixBuild(d *guixtest.PrivateDaemon, url string, p store.Path) (string, error) {
	_, stderr, err := d.Run("build", "--no-grafts", "--substitute-urls="+url, string(p))
	return stderr, err
}

// TestGuixDaemonSubstitutes has guix-daemon substitute a closure from the
// server once per compression the server offers, each of which Guix reads
// (none, gzip, zstd; lzip, which Guix reads too, is not offered), and
// checks what the daemon recorded against Nix's build of the same
// derivations, and that it downloaded the NARs in that compression.
func TestGuixDaemonSubstitutes(t *testing.T) {
	guixtest.Require(t)
	nixtest.Require(t)
	for _, comp := range append([]string{CompressionNone}, compressions...) {
		t.Run(comp, func(t *testing.T) { testGuixSubstitute(t, comp) })
	}
}

func testGuixSubstitute(t *testing.T, comp string) {
	b := newNixBuilder(t)
	comps := []string{}
	if comp != CompressionNone {
		comps = []string{comp}
	}
	s := newServer(t, &stableSource{Source: b.source(b.narinfoDir)}, func(c *Config) { c.Compressions = comps })
	seen := observe(s)
	url := start(t, s)
	for _, p := range b.closure {
		// Guix takes the smallest NAR offered: wait until the compressed
		// one is (the server lists it once it is in its cache).
		eventually(t, comp+" NAR of "+string(p)+" in the narinfo", func() bool {
			ni, _ := fetchNarinfo(t, url, p)
			return ni.Files[len(ni.Files)-1].Compression == comp
		})
	}
	d := guixClient(t, b)
	// One item per guix build, its dependency first: each guix build has
	// the daemon start a new guix substitute, which takes the smallest NAR
	// for its first download only (after a download that kept the CPU
	// busy it prefers the fastest to decompress, uncompressed first).
	for _, p := range slices.Backward(b.closure) {
		if stderr, err := guixBuild(d, url, p); err != nil {
			t.Fatalf("guix build: %v\n%s", err, stderr)
		}
	}
	infos := d.PathInfos(strs(b.closure)...)
	for _, p := range b.closure {
		want := b.narinfoOf(t, p)
		got, ok := infos[string(p)]
		var refs []string
		for _, r := range want.References {
			refs = append(refs, string(store.GuixDir)+"/"+r)
		}
		if !ok || got.NarHash != want.NarHash || uint64(got.NarSize) != want.NarSize ||
			!slices.Equal(got.References, refs) || got.Deriver != string(store.GuixDir)+"/"+want.Deriver {
			t.Errorf("%s: guix-daemon recorded %+v (valid %v); Nix built %+v", p, got, ok, want)
		}
		narURL := "/nar/" + comp + "/" + p.Base()
		if comp == CompressionNone {
			narURL = "/nar/" + p.Base()
		}
		if !seen.has(narURL) {
			t.Errorf("guix-daemon did not download %s", narURL)
		}
	}
}

// TestGuixDaemonRefuses has guix-daemon try to substitute a closure whose
// top item's NAR, or narinfo, does not match what its builder signed. The
// daemon must refuse it and the item must stay invalid:
//   - the server's Source gives a NAR with one byte changed: the server
//     cuts the transfer before its end;
//   - a server that does not check (a proxy in front of ours) sends that
//     NAR whole: guix substitute finds the hash mismatch itself;
//   - the narinfo's signed part lost a reference: the signature check
//     fails.
func TestGuixDaemonRefuses(t *testing.T) {
	guixtest.Require(t)
	nixtest.Require(t)
	b := newNixBuilder(t)
	top := b.closure[0]
	flip := func(d []byte) []byte {
		d[len(d)-100] ^= 1
		return d
	}
	d := guixClient(t, b)
	t.Run("cut", func(t *testing.T) {
		src := &countingSource{Source: b.source(b.narinfoDir), tamper: func(d []byte) []byte {
			if bytes.Contains(d, []byte("compresses well")) { // the top item's NAR only
				return flip(d)
			}
			return d
		}}
		checkRefused(t, d, start(t, newServer(t, src, nil)), top)
	})
	t.Run("whole", func(t *testing.T) {
		url := start(t, newServer(t, b.source(b.narinfoDir), func(c *Config) { c.Compressions = []string{} }))
		checkRefused(t, d, proxy(t, url, "/nar/"+top.Base(), flip), top)
	})
	t.Run("narinfo", func(t *testing.T) {
		dir := t.TempDir()
		for _, p := range b.closure {
			b.writeNarinfo(t, dir, b.narinfoOf(t, p))
		}
		ni := b.narinfoOf(t, top)
		line := "References: " + strings.Join(ni.References, " ") + "\n"
		ni.Signed = bytes.Replace(ni.Signed, []byte(line), []byte("References: \n"), 1)
		ni.References = nil
		b.writeNarinfo(t, dir, ni)
		checkRefused(t, d, start(t, newServer(t, b.source(dir), nil)), top)
	})
}

// checkRefused has d substitute p from url, and checks that p is not valid
// afterwards. (What guix substitute unpacked before it found the hash
// wrong stays at the real path, as with Nix, until the daemon next
// substitutes or collects it: it is not in the store's database.)
func checkRefused(t *testing.T, d *guixtest.PrivateDaemon, url string, p store.Path) {
	stderr, err := guixBuild(d, url, p)
	t.Logf("guix build: %v\n%s", err, stderr)
	if infos := d.PathInfos(string(p)); len(infos) != 0 {
		t.Errorf("%s is valid after guix build: %+v", p, infos)
	}
}

// proxy serves what url serves, but for path it serves change applied to
// the body, whole, with its Content-Length. It returns its URL.
func proxy(t *testing.T, url, path string, change func([]byte) []byte) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := http.Get(url + r.URL.Path)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		if r.URL.Path == path {
			body = change(body)
		}
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		w.Write(body)
	})}
	done := make(chan struct{})
	go func() {
		srv.Serve(ln)
		close(done)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return "http://" + ln.Addr().String()
}
