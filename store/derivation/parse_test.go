package derivation

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/tbfg/tbfg-node/store"
)

// mapLoader is an in-memory Loader.
type mapLoader map[store.Path]*Derivation

func (m mapLoader) Load(p store.Path) (*Derivation, error) {
	if d, ok := m[p]; ok {
		return d, nil
	}
	return nil, os.ErrNotExist
}

// TestMinimalGuix checks a .drv file written by Guix: it prints back byte for
// byte and its output path recomputes.
func TestMinimalGuix(t *testing.T) {
	data, err := os.ReadFile("testdata/minimal.drv")
	if err != nil {
		t.Fatal(err)
	}
	d, err := Parse(data, store.GuixDir)
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Bytes(); !bytes.Equal(got, data) {
		t.Fatalf("printed\n%s\nwant\n%s", got, data)
	}
	name, err := d.Name()
	if err != nil || name != "minimal" {
		t.Fatalf("Name() = %q, %v", name, err)
	}
	h := NewHasher(store.GuixDir, mapLoader{})
	if err := h.Check(d, name); err != nil {
		t.Fatal(err)
	}
	paths, err := h.OutputPaths(d, name)
	if want := store.Path("/gnu/store/280xcws0xz6c1gx6721jyj2d8j0ly9gz-minimal"); err != nil || paths["out"] != want {
		t.Fatalf("output paths %v, %v; want out=%s", paths, err, want)
	}
	d.Env["out"] = "/gnu/store/280xcws0xz6c1gx6721jyj2d8j0ly9gz-minimaX"
	if err := h.Check(d, name); !errors.Is(err, ErrWrongOutput) || !strings.Contains(err.Error(), "environment variable out") {
		t.Fatalf("Check with a wrong variable: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	const p = "/gnu/store/280xcws0xz6c1gx6721jyj2d8j0ly9gz-minimal"
	const fix = `"sha256","8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4"`
	tests := []struct {
		name, in, want string
	}{
		{"empty", ``, `derivation line 1, column 1: expected 'D', found end of input`},
		{"prefix", `Derive[`, `derivation line 1, column 7: expected '(', found '['`},
		{"missing quote", `Derive([(out`, `derivation line 1, column 10: expected '"', found 'o'`},
		{"unterminated", `Derive([("out`, `derivation line 1, column 14: unterminated string starting at column 10`},
		{"bad escape", `Derive([("o\ut"`, `derivation line 1, column 12: unknown escape sequence \u (want \" \\ \n \r or \t)`},
		{"second line", "Derive([(\"a\nb\",", `derivation line 2, column 4: expected '"', found end of input`},
		{"list separator", `Derive([("out","` + p + `","","");`, `derivation line 1, column 76: expected ',' or ']', found ';'`},
		{"bad output path", `Derive([("out","/nix/store/280xcws0xz6c1gx6721jyj2d8j0ly9gz-minimal","","")]`, `derivation line 1, column 9: output "out": invalid store path`},
		{"bad output id", `Derive([("a b","","","")]`, `derivation line 1, column 9: output "a b": bad output id`},
		{"hash without algo", `Derive([("out","` + p + `","","00")]`, `hash "00" without a hash algorithm`},
		{"bad fixed hash", `Derive([("out","` + p + `","sha256","00")]`, `invalid fixed-output derivation: invalid hash: sha256 digest has 2 hex digits, want 64`},
		{"fixed without path", `Derive([("out","",` + fix + `)]`, `fixed output has no path`},
		{"unknown algo", `Derive([("out","` + p + `","r:sha3","00")]`, `unknown hash algorithm "sha3"`},
		{"duplicate output", `Derive([("out","","",""),("out","","","")]`, `column 26: duplicate output "out"`},
		{"input not drv", `Derive([],[("` + p + `",[])]`, `column 12: input derivation: invalid store path`},
		{"duplicate input output", `Derive([],[("` + p + `.drv",["out","out"])]`, `duplicate output "out"`},
		{"duplicate source", `Derive([],[],["` + p + `","` + p + `"]`, `column 69: duplicate input source`},
		{"source not path", `Derive([],[],["x"]`, `column 15: invalid store path "x"`},
		{"duplicate env", `Derive([],[],[],"s","b",[],[("a",""),("a","")])`, `column 38: duplicate environment variable "a"`},
		{"trailing", `Derive([],[],[],"s","b",[],[])` + "\n", `column 31: unexpected data after the derivation`},
		{"truncated", `Derive([],[],[],"s","b",[],[]`, `column 30: expected ')', found end of input`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in), store.GuixDir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse(%q) error = %v, want one containing %q", tt.in, err, tt.want)
			}
			var se *SyntaxError
			if !errors.As(err, &se) || !errors.Is(err, ErrSyntax) {
				t.Errorf("error %v is not a *SyntaxError", err)
			}
		})
	}
	if _, err := Parse(make([]byte, MaxSize+1), store.GuixDir); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized input: %v", err)
	}
}

// TestPrintEscapes checks that every escaped byte and other bytes survive a
// print and parse, and that lists come out sorted whatever order they had.
func TestPrintEscapes(t *testing.T) {
	const src = "/gnu/store/280xcws0xz6c1gx6721jyj2d8j0ly9gz-src"
	d := &Derivation{
		Outputs:   map[string]Output{"out": {}, "dev": {}},
		InputDrvs: map[store.Path][]string{"/gnu/store/280xcws0xz6c1gx6721jyj2d8j0ly9gz-b.drv": {"z", "a"}},
		InputSrcs: []store.Path{src + "2", src},
		System:    "x86_64-linux",
		Builder:   "/bin/sh",
		Args:      []string{"b", "a", ""},
		Env:       map[string]string{"z": "q\"\\\n\r\t\x00\xff€", "a": "", "b": `\\`},
	}
	want := `Derive([("dev","","",""),("out","","","")],[("/gnu/store/280xcws0xz6c1gx6721jyj2d8j0ly9gz-b.drv",["a","z"])],` +
		`["` + src + `","` + src + `2"],"x86_64-linux","/bin/sh",["b","a",""],[("a",""),("b","\\\\"),("z","q\"\\\n\r\t` + "\x00\xff€" + `")])`
	got := d.Bytes()
	if string(got) != want {
		t.Fatalf("printed\n%s\nwant\n%s", got, want)
	}
	back, err := Parse(got, store.GuixDir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.Bytes(), got) || back.Env["z"] != d.Env["z"] {
		t.Errorf("reparsed differently: %+v", back)
	}
}

// FuzzParse checks that Parse never panics and that whatever it accepts
// prints to text that parses to the same derivation and prints identically.
func FuzzParse(f *testing.F) {
	if data, err := os.ReadFile("testdata/minimal.drv"); err == nil {
		f.Add(data)
	}
	f.Add([]byte(`Derive([("out","/gnu/store/280xcws0xz6c1gx6721jyj2d8j0ly9gz-f","r:sha256","8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4")],[("/gnu/store/280xcws0xz6c1gx6721jyj2d8j0ly9gz-b.drv",["a","z"])],[],"s","b",["\n\t"],[("a\"\\","\r")])`))
	f.Add([]byte(`Derive([],[],[],"","",[],[])`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Parse(data, store.GuixDir)
		if err != nil {
			return
		}
		printed := d.Bytes()
		again, err := Parse(printed, store.GuixDir)
		if err != nil {
			t.Fatalf("printed form does not parse: %v\n%s", err, printed)
		}
		if !reflect.DeepEqual(normal(d), normal(again)) {
			t.Fatalf("reparsed derivation differs:\n%+v\n%+v", d, again)
		}
		if !bytes.Equal(again.Bytes(), printed) {
			t.Fatalf("second print differs")
		}
		// Hashing accepted input must not panic either.
		_, _ = NewHasher(store.GuixDir, mapLoader{}).OutputPaths(d, "x")
		_, _ = StorePath(store.GuixDir, d, "x")
	})
}

// normal sorts the lists whose order printing does not keep.
func normal(d *Derivation) *Derivation {
	c := *d
	c.InputSrcs = append([]store.Path(nil), d.InputSrcs...)
	sortPaths(c.InputSrcs)
	c.InputDrvs = make(map[store.Path][]string, len(d.InputDrvs))
	for p, outs := range d.InputDrvs {
		c.InputDrvs[p] = sortedCopy(outs)
	}
	return &c
}

func sortPaths(list []store.Path) {
	for i := 1; i < len(list); i++ {
		for j := i; j > 0 && list[j] < list[j-1]; j-- {
			list[j], list[j-1] = list[j-1], list[j]
		}
	}
}
