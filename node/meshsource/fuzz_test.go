package meshsource

import (
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
