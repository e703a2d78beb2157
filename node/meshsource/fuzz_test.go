package meshsource

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/substitutes/publish"
)

// FuzzSourceRequests feeds untrusted names, as they come from HTTP requests
// and peers, to every lookup of a Source: none may panic, and each either
// answers for the one held item or fails.
func FuzzSourceRequests(f *testing.F) {
	m := newMesh(f)
	a, b := m.join(f, "A"), m.join(f, "B")
	p := addText(f, a.store, "held", "held contents\n")
	m.hold(f, a, p)
	f.Add(p.HashPart(), p.Base())
	f.Add("../../../../etc/passwd", "../x.drv")
	f.Add("", string(p))
	f.Add("00000000000000000000000000000000", "00000000000000000000000000000000-x.drv")
	f.Fuzz(func(t *testing.T, hash, base string) {
		ctx := context.Background()
		if ni, err := b.src.Narinfo(ctx, hash); err == nil && ni.StorePath != p {
			t.Fatalf("narinfo %q answered with %s", hash, ni.StorePath)
		}
		if rc, err := b.src.Log(ctx, base); err == nil {
			rc.Close()
			t.Fatalf("log %q answered", base)
		} else if !errors.Is(err, publish.ErrNotFound) {
			t.Fatalf("log %q: %v", base, err)
		}
		q := store.Path(store.GuixDir) + "/" + store.Path(base)
		if rc, err := b.src.OpenNAR(ctx, q); err == nil {
			io.Copy(io.Discard, rc)
			rc.Close()
			if q != p {
				t.Fatalf("NAR of %q answered", q)
			}
		}
		if err := b.src.Fetch(ctx, q); err == nil && q != p {
			t.Fatalf("fetched %q", q)
		}
	})
}

// FuzzLogRequest decodes untrusted request frames of the log stream: none
// may panic, a decoded request names a derivation path of the store, and a
// version 2 request encodes back to the same bytes.
func FuzzLogRequest(f *testing.F) {
	for _, seed := range [][]byte{
		mustLogRequest(f, "/gnu/store/0123456789abcdfghijklmnpqrsvwxyz-hello.drv", -4096, true),
		frameBytes(1, "/gnu/store/0123456789abcdfghijklmnpqrsvwxyz-hello.drv"),
		{2, 0, 0}, {2, 0xff, 0xff}, []byte("GET / HTTP/1.1"),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		req, err := decodeLogRequest(r, store.GuixDir)
		if err != nil {
			return
		}
		if _, err := store.GuixDir.ParsePath(string(req.drv)); err != nil {
			t.Fatalf("decoded %q: %v", req.drv, err)
		}
		if req.version != logVersion {
			return
		}
		again, err := encodeLogRequest(req.drv, req.offset, req.follow)
		if err != nil || !bytes.Equal(again, b[:len(b)-r.Len()]) {
			t.Fatalf("request %x encodes back to %x, %v", b[:len(b)-r.Len()], again, err)
		}
	})
}

// FuzzFrames reads untrusted version 2 responses: no panic, and never more
// bytes than the response holds.
func FuzzFrames(f *testing.F) {
	f.Add([]byte{0, 0, 0, 2, 'h', 'i', 0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, _ := io.ReadAll(&frameReader{r: bytes.NewReader(b)})
		if len(got) > len(b) {
			t.Fatalf("read %d bytes from %d", len(got), len(b))
		}
	})
}

func mustLogRequest(f *testing.F, p string, offset int64, follow bool) []byte {
	b, err := encodeLogRequest(store.Path(p), offset, follow)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

func frameBytes(version byte, body string) []byte {
	return append([]byte{version, byte(len(body) >> 8), byte(len(body))}, body...)
}
