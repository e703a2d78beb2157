package narinfo

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/tbfg/tbfg-node/store"
)

// FuzzParse checks that Parse never panics and that whatever it accepts prints
// and parses back to the same narinfo, with the signed part unchanged.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.narinfo")
	for _, name := range seeds {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("StorePath: /gnu/store/cs56i9digj9qg1bd383cmxc6xrfpdn9n-h\nURL: u\nNarHash: sha256:0qhasy0w9w9mfv0vacgzymxl4nww8cslyza5x2ci42v7i2b13lyl\nNarSize: 1\nSignature: 1;h;x\nURL: v\nSig: k:x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, dir := range []store.Dir{store.GuixDir, store.NixDir} {
			n, err := Parse(data, dir)
			if err != nil {
				continue
			}
			out, err := n.Marshal()
			if err != nil {
				t.Fatalf("parsed narinfo does not print: %v\n%q", err, data)
			}
			back, err := Parse(out, dir)
			if err != nil {
				t.Fatalf("printed narinfo does not parse: %v\n%q\nprinted:\n%q", err, data, out)
			}
			if !reflect.DeepEqual(n, back) {
				t.Fatalf("round trip changed the narinfo:\n%+v\n%+v\n%q", n, back, out)
			}
			if n.Signed != nil && !bytes.HasPrefix(out, n.Signed) {
				t.Fatalf("printed narinfo does not start with its signed part:\n%q", out)
			}
		}
	})
}
