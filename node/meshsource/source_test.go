package meshsource

import (
	"context"
	"strings"
	"testing"
)

// TestNarinfoCacheFollowsRecord checks the cache of parsed narinfos: the same
// record gives the same parse, and a record whose text differs (as after a
// snapshot restore that replaced it) is parsed again.
func TestNarinfoCacheFollowsRecord(t *testing.T) {
	m := newMesh(t)
	a := m.join(t, "A")
	p := addText(t, a.store, "item", "contents\n")
	m.hold(t, a, p)
	first, err := a.src.Narinfo(context.Background(), p.HashPart())
	if err != nil {
		t.Fatal(err)
	}
	again, err := a.src.Narinfo(context.Background(), p.HashPart())
	if err != nil || again != first {
		t.Fatalf("second lookup: %p, %v; want the cached %p", again, err, first)
	}
	text := item(t, a, p).Narinfo
	changed := strings.Replace(text, "NarSize: ", "NarSize: 1", 1)
	ni, err := a.src.parse(p.HashPart(), changed)
	if err != nil {
		t.Fatal(err)
	}
	if ni == first || ni.NarSize == first.NarSize {
		t.Fatalf("changed text gave NarSize %d, the cached parse's %d", ni.NarSize, first.NarSize)
	}
	back, err := a.src.parse(p.HashPart(), text)
	if err != nil || back.NarSize != first.NarSize {
		t.Fatalf("original text after a change: %+v, %v", back, err)
	}
}
