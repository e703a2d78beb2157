package store

import (
	"errors"
	"strings"
	"testing"
)

func TestParsePath(t *testing.T) {
	const hello = "/gnu/store/cs56i9digj9qg1bd383cmxc6xrfpdn9n-hello-2.12.2"
	p, err := GuixDir.ParsePath(hello)
	if err != nil {
		t.Fatal(err)
	}
	if p.HashPart() != "cs56i9digj9qg1bd383cmxc6xrfpdn9n" || p.Name() != "hello-2.12.2" || p.Dir() != GuixDir {
		t.Errorf("parts of %s: %q %q %q", p, p.HashPart(), p.Name(), p.Dir())
	}
	if _, err := NixDir.ParsePath("/nix/store/cs56i9digj9qg1bd383cmxc6xrfpdn9n-x"); err != nil {
		t.Errorf("nix path: %v", err)
	}
	bad := map[string]string{
		"other dir":    "/nix/store/cs56i9digj9qg1bd383cmxc6xrfpdn9n-hello",
		"sub path":     hello + "/bin/hello",
		"short hash":   "/gnu/store/cs56i9digj9qg1bd383cmxc6xrfpdn9-hello",
		"bad hash":     "/gnu/store/cs56i9digj9qg1bd383cmxc6xrfpdn9e-hello",
		"no name":      "/gnu/store/cs56i9digj9qg1bd383cmxc6xrfpdn9n-",
		"dot name":     "/gnu/store/cs56i9digj9qg1bd383cmxc6xrfpdn9n-.hello",
		"space":        "/gnu/store/cs56i9digj9qg1bd383cmxc6xrfpdn9n-he llo",
		"long name":    "/gnu/store/cs56i9digj9qg1bd383cmxc6xrfpdn9n-" + strings.Repeat("a", 212),
		"no separator": "/gnu/store/cs56i9digj9qg1bd383cmxc6xrfpdn9nxhello",
		"dir only":     "/gnu/store/",
	}
	for what, s := range bad {
		t.Run(what, func(t *testing.T) {
			if _, err := GuixDir.ParsePath(s); !errors.Is(err, ErrBadPath) {
				t.Errorf("ParsePath(%q) error = %v, want ErrBadPath", s, err)
			}
		})
	}
}

func TestDirValidate(t *testing.T) {
	for _, d := range []Dir{GuixDir, NixDir, "/tmp/x/gnu/store"} {
		if err := d.Validate(); err != nil {
			t.Errorf("%s: %v", d, err)
		}
	}
	for _, d := range []Dir{"", "/", "gnu/store", "/gnu/store/", "/gnu/../store"} {
		if err := d.Validate(); !errors.Is(err, ErrBadDir) {
			t.Errorf("%q: error = %v, want ErrBadDir", d, err)
		}
	}
}

func FuzzParsePath(f *testing.F) {
	f.Add("/gnu/store/cs56i9digj9qg1bd383cmxc6xrfpdn9n-hello-2.12.2")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := GuixDir.ParsePath(s)
		if err != nil {
			return
		}
		if q, err := GuixDir.Join(p.Base()); err != nil || q != p {
			t.Fatalf("Join(Base(%q)) = %q, %v", p, q, err)
		}
	})
}
