package sexp

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestParseForms(t *testing.T) {
	want := List{Atom("a"), Atom("abc")}
	tests := []struct{ name, in string }{
		{"token", "(a abc)"},
		{"canonical", "(1:a3:abc)"},
		{"hex", "(a #616263#)"},
		{"hex with spaces", "(a #61 62\n63#)"},
		{"quoted", `(a "abc")`},
		{"quoted escapes", `(a "\x61\142c")`},
		{"quoted continuation", "(a \"ab\\\nc\")"},
		{"quoted continuation crlf", "(a \"ab\\\r\nc\")"},
		{"base64", "(a |YWJj|)"},
		{"base64 unpadded", "(a |YWJj|)"},
		{"prefixed quoted", `(a 3"abc")`},
		{"prefixed hex", "(a 3#616263#)"},
		{"prefixed base64", "(a 3|YWJj|)"},
		{"transport", "{KDE6YTM6YWJjKQ==}"},
		{"transport with spaces", " {KDE6YTM6\nYWJjKQ==} \n"},
		{"whitespace", " \t(a\vabc\f)\r\n"},
		{"token ends at quote", `(a"abc")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !Equal(got, want) {
				t.Fatalf("got %q, want %q", Canonical(got), Canonical(want))
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, in string
		offset   int
		sentinel error
	}{
		{"empty", "", 0, ErrSyntax},
		{"atom at top", "abc", 0, ErrSyntax},
		{"unclosed", "(a (b)", 6, ErrSyntax},
		{"extra close", "(a))", 3, ErrSyntax},
		{"trailing data", "(a) b", 4, ErrSyntax},
		{"bare number", "(a 1)", 4, ErrSyntax},
		{"leading zero length", "(a 03:abc)", 3, ErrSyntax},
		{"length past end", "(a 9:abc)", 3, ErrSyntax},
		{"huge length", "(a 99999999999999999999:abc)", 3, ErrSyntax},
		{"length mismatch", `(a 2"abc")`, 3, ErrSyntax},
		{"odd hex", "(a #616#)", 7, ErrSyntax},
		{"bad hex", "(a #61g2#)", 6, ErrSyntax},
		{"unterminated hex", "(a #6162", 3, ErrSyntax},
		{"bad escape", `(a "x\zy")`, 6, ErrSyntax},
		{"short octal", `(a "\12")`, 5, ErrSyntax},
		{"octal overflow", `(a "\777")`, 5, ErrSyntax},
		{"unterminated string", `(a "abc`, 3, ErrSyntax},
		{"base64 with space", "(a |YW Jj|)", 4, ErrSyntax},
		{"unterminated base64", "(a |YWJj", 3, ErrSyntax},
		{"display hint", "(a [text/plain]b)", 3, ErrSyntax},
		{"bad character", "(a \x00)", 3, ErrSyntax},
		{"bad transport", "{!!!!}", 1, ErrSyntax},
		{"transport trailing", "{KDE6YSk=} x", 11, ErrSyntax},
		{"too deep", string(bytes.Repeat([]byte("("), MaxDepth+1)), MaxDepth, ErrTooDeep},
		{"too large", "(" + string(bytes.Repeat([]byte("a"), MaxSize)) + ")", MaxSize, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in))
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("got %v, want a *SyntaxError", err)
			}
			if se.Offset != tt.offset || !errors.Is(err, tt.sentinel) {
				t.Fatalf("got %v (offset %d), want offset %d and %v", err, se.Offset, tt.offset, tt.sentinel)
			}
		})
	}
}

func TestAdvancedLayout(t *testing.T) {
	tests := []struct{ in, want string }{
		{"(acl)", "(acl)\n"},
		{"(a b c)", "(a b c)\n"},
		{"(a ())", "(a \n ()\n )\n"},
		{"(a (b) c)", "(a \n (b)\n c)\n"},
		{"(a (b)(c))", "(a \n (b)\n (c)\n )\n"},
		{"((a) b)", "(\n (a)\n b)\n"},
		{`(a "")`, "(a \"\")\n"},
		{"(a #00#)", "(a #00#)\n"},
		{"(a #80#)", "(a #80#)\n"},
		{"(a #7f#)", "(a #7F#)\n"},
		{"(a #41a0#)", "(a #41A0#)\n"},
		{"(a #41a1#)", "(a \"A\xa1\")\n"},
		{"(a #4142#)", "(a AB)\n"},
		{"(a #3132#)", "(a \"12\")\n"},
		{"(a #0a#)", "(a \"\\n\")\n"},
		{"(a #08090b0c0d22275c#)", "(a \"\\b\\t\\v\\f\\r\\\"\\'\\\\\")\n"},
		{"(a #4101#)", "(a #4101#)\n"},
		{"(a #4100#)", "(a A\x00)\n"},
		{"(a #410001#)", "(a #410001#)\n"},
		{"(a #2b2d3d#)", "(a +-=)\n"},
		{"(a \"x y\")", "(a \"x y\")\n"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			s, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if got := string(Advanced(s)); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestGuixFiles checks that real files written by Guix parse and print back
// byte for byte (the signature was written by a current libgcrypt; the
// bordeaux public key by an older one that put no space after a head token, so
// only its contents are compared).
func TestGuixFiles(t *testing.T) {
	for _, name := range []string{"acl.example", "bordeaux.guix.gnu.org.pub"} {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			s, err := Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			again, err := Parse(Advanced(s))
			if err != nil || !Equal(s, again) {
				t.Fatalf("advanced form does not read back: %v", err)
			}
			if name == "acl.example" && !bytes.Equal(Advanced(s), b) {
				t.Fatalf("got\n%s\nwant\n%s", Advanced(s), b)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	s := List{Atom("signature"), List{Atom("data"), List{Atom("flags"), Atom("rfc6979")},
		List{Atom("hash"), Atom("sha256"), Atom(bytes.Repeat([]byte{0xab}, 32))}},
		List{Atom("note"), Atom("hello world\n"), Atom(""), Atom("1st")}}
	for name, form := range map[string][]byte{
		"canonical": Canonical(s), "advanced": Advanced(s), "transport": Transport(s),
	} {
		t.Run(name, func(t *testing.T) {
			got, err := Parse(form)
			if err != nil {
				t.Fatal(err)
			}
			if !Equal(got, s) {
				t.Fatalf("got %q", Canonical(got))
			}
		})
	}
}

func TestFind(t *testing.T) {
	s, err := Parse([]byte("(signature (data (hash sha256 #00#)) (sig-val (ecdsa (r #01#))) (public-key (ecc)))"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{"signature", "data", "hash", "ecdsa", "r", "public-key", "ecc"} {
		if got := s.Find(tok); got.Head() != tok {
			t.Errorf("Find(%q) = %q", tok, Canonical(got))
		}
	}
	if got := s.Find("missing"); got != nil {
		t.Errorf("Find(missing) = %q", Canonical(got))
	}
	if got := s.Find("sha256"); got != nil {
		t.Errorf("Find(sha256) found an atom's list: %q", Canonical(got))
	}
}

// TestQuoteLetterInvertsEscapes checks that the printer's escape letters are
// exactly the reader's: every named escape prints back with its letter, and
// no other byte gets one.
func TestQuoteLetterInvertsEscapes(t *testing.T) {
	for c := 0; c < 256; c++ {
		letter, ok := quoteLetter(byte(c))
		var want byte
		found := false
		for l, b := range escapes {
			if b == byte(c) {
				want, found = l, true
			}
		}
		if ok != found || letter != want {
			t.Errorf("quoteLetter(%q) = %q, %v; escapes say %q, %v", byte(c), letter, ok, want, found)
		}
	}
}
