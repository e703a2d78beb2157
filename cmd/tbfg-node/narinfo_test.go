package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tbfg/tbfg-node/internal/nixtest"
	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/substitutes/nixkey"
	"github.com/tbfg/tbfg-node/substitutes/pki"
)

const narinfoTestdata = "../../substitutes/narinfo/testdata/"

// runStdin runs tbfg-node with args and stdin as standard input.
func runStdin(t *testing.T, stdin []byte, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), &stdio{in: bytes.NewReader(stdin), out: &out, err: &errOut}, args)
	return code, out.String(), errOut.String()
}

func readTestFile(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// genKeys runs `key generate` into a new directory and returns it.
func genKeys(t *testing.T, args ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "keys")
	if code, _, stderr := runStdin(t, nil, append(append([]string{"key", "generate"}, args...), dir)...); code != 0 {
		t.Fatalf("key generate: exit %d: %s", code, stderr)
	}
	return dir
}

func TestKeyGenerate(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		sec, pub string
		parse    func(sec, pub []byte) error
	}{
		{"guix", nil, "signing-key.sec", "signing-key.pub", func(sec, pub []byte) error {
			k, err := pki.ParseSecretKey(sec)
			if err != nil {
				return err
			}
			p, err := pki.ParsePublicKey(pub)
			if err == nil && p != k.Public {
				err = fmt.Errorf("public key %X is not the secret key's", p.Q)
			}
			return err
		}},
		{"nix", []string{"--nix", "cache.example.org-1"}, "nix-signing-key.sec", "nix-signing-key.pub", func(sec, pub []byte) error {
			k, err := nixkey.ParseSecretKey(sec)
			if err != nil {
				return err
			}
			if string(pub) != k.Public().String() || k.Name != "cache.example.org-1" {
				return fmt.Errorf("public key %q is not the secret key's", pub)
			}
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := genKeys(t, tt.args...)
			sec, pub := filepath.Join(dir, tt.sec), filepath.Join(dir, tt.pub)
			for name, want := range map[string]os.FileMode{sec: 0o600, pub: 0o644} {
				if fi, err := os.Stat(name); err != nil || fi.Mode().Perm() != want {
					t.Errorf("%s: %v, %v; want mode %v", name, fi.Mode(), err, want)
				}
			}
			secData, pubData := readTestFile(t, sec), readTestFile(t, pub)
			if err := tt.parse(secData, pubData); err != nil {
				t.Fatal(err)
			}
			code, _, stderr := runStdin(t, nil, append(append([]string{"key", "generate"}, tt.args...), dir)...)
			if code != 1 || !strings.Contains(stderr, "already exists") {
				t.Errorf("second key generate: exit %d, %q; want 1 and a refusal", code, stderr)
			}
			if !bytes.Equal(readTestFile(t, sec), secData) {
				t.Error("secret key overwritten")
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 2 {
				t.Errorf("key directory holds %d files, want 2", len(entries))
			}
		})
	}
}

// unsignedBordeaux is the real narinfo without its Signature line.
func unsignedBordeaux(t *testing.T) []byte {
	data := readTestFile(t, narinfoTestdata+"hello-2.12.2.narinfo")
	var out []byte
	for _, line := range strings.SplitAfter(string(data), "\n") {
		if !strings.HasPrefix(line, "Signature: ") {
			out = append(out, line...)
		}
	}
	return out
}

func TestNarinfoVerifyBordeaux(t *testing.T) {
	code, stdout, stderr := runStdin(t, nil, "narinfo", "verify", "--acl", narinfoTestdata+"bordeaux.guix.gnu.org.pub",
		narinfoTestdata+"hello-2.12.2.narinfo")
	if code != 0 || stdout != "valid-signature\n" {
		t.Errorf("exit %d, %q, %q; want 0 and valid", code, stdout, stderr)
	}
}

// TestNarinfoGuix signs with a fresh Guix key through the command line and
// checks each status word `narinfo verify` can print.
func TestNarinfoGuix(t *testing.T) {
	dir := genKeys(t)
	code, signed, stderr := runStdin(t, unsignedBordeaux(t), "narinfo", "sign", "--key", filepath.Join(dir, "signing-key.sec"), "--host", "node-1")
	if code != 0 || !strings.Contains(signed, "\nSignature: 1;node-1;") {
		t.Fatalf("narinfo sign: exit %d, %s%s", code, signed, stderr)
	}
	pub := filepath.Join(dir, "signing-key.pub")
	other := genKeys(t)
	tests := []struct {
		name, narinfo, acl, want string
	}{
		{"valid", signed, pub, "valid-signature"},
		{"ACL file", signed, writeACL(t, dir), "valid-signature"},
		{"other key", signed, filepath.Join(other, "signing-key.pub"), "unauthorized-key"},
		{"changed signed byte", strings.Replace(signed, "NarSize: 282616", "NarSize: 282617", 1), pub, "hash-mismatch"},
		{"unsigned", string(unsignedBordeaux(t)), pub, "unsigned"},
		{"not base64", strings.Replace(signed, ";node-1;", ";node-1;!", 1), pub, "corrupt-signature"},
		{"borrowed key", signWithSwappedKey(t, other, dir), pub, "invalid-signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "x.narinfo")
			if err := os.WriteFile(file, []byte(tt.narinfo), 0o644); err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr := runStdin(t, nil, "narinfo", "verify", "--acl", tt.acl, file)
			wantCode := 1
			if tt.want == "valid-signature" {
				wantCode = 0
			}
			if code != wantCode || stdout != tt.want+"\n" {
				t.Errorf("exit %d, %q, %q; want %d and %q", code, stdout, stderr, wantCode, tt.want)
			}
		})
	}
}

// writeACL writes an /etc/guix/acl file authorizing the key in dir.
func writeACL(t *testing.T, dir string) string {
	k, err := pki.ParsePublicKey(readTestFile(t, filepath.Join(dir, "signing-key.pub")))
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(t.TempDir(), "acl")
	if err := os.WriteFile(name, (&pki.ACL{Keys: []pki.PublicKey{k}}).Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

// signWithSwappedKey signs with the key in signer, then names the key in
// victim as the signer inside the signature: authorized, right hash, wrong
// signature.
func signWithSwappedKey(t *testing.T, signer, victim string) string {
	code, signed, stderr := runStdin(t, unsignedBordeaux(t), "narinfo", "sign", "--key", filepath.Join(signer, "signing-key.sec"), "--host", "h")
	if code != 0 {
		t.Fatalf("narinfo sign: %s", stderr)
	}
	qOf := func(dir string) string {
		k, err := pki.ParsePublicKey(readTestFile(t, filepath.Join(dir, "signing-key.pub")))
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%X", k.Q)
	}
	head, b64, _ := strings.Cut(signed, "Signature: 1;h;")
	b64, tail, _ := strings.Cut(b64, "\n")
	sexp, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || !bytes.Contains(sexp, []byte(qOf(signer))) {
		t.Fatalf("signature %q: %v", sexp, err)
	}
	sexp = bytes.Replace(sexp, []byte(qOf(signer)), []byte(qOf(victim)), 1)
	return head + "Signature: 1;h;" + base64.StdEncoding.EncodeToString(sexp) + "\n" + tail
}

func TestNarinfoNix(t *testing.T) {
	dir := genKeys(t, "--nix", "node-1")
	other := genKeys(t, "--nix", "node-2")
	code, signed, stderr := runStdin(t, unsignedBordeaux(t), "narinfo", "sign", "--key", filepath.Join(dir, "nix-signing-key.sec"))
	if code != 0 || !strings.Contains(signed, "\nSig: node-1:") {
		t.Fatalf("narinfo sign: exit %d, %s%s", code, signed, stderr)
	}
	pub := filepath.Join(dir, "nix-signing-key.pub")
	tests := []struct{ name, narinfo, keys, want string }{
		{"valid", signed, pub, "valid-signature"},
		{"other key", signed, filepath.Join(other, "nix-signing-key.pub"), "unauthorized-key"},
		{"changed size", strings.Replace(signed, "NarSize: 282616", "NarSize: 282617", 1), pub, "invalid-signature"},
		{"unsigned", string(unsignedBordeaux(t)), pub, "unsigned"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, _ := runStdin(t, []byte(tt.narinfo), "narinfo", "verify", "--acl", tt.keys)
			if stdout != tt.want+"\n" || (code == 0) != (tt.want == "valid-signature") {
				t.Errorf("exit %d, %q; want %q", code, stdout, tt.want)
			}
		})
	}
}

func TestNarinfoErrors(t *testing.T) {
	dir := genKeys(t)
	tests := []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"no key", "", []string{"narinfo", "sign"}, 1, "--key is required"},
		{"no acl", "", []string{"narinfo", "verify"}, 1, "--acl is required"},
		{"two files", "", []string{"narinfo", "verify", "--acl", "x", "a", "b"}, 2, "usage:"},
		{"unknown flag", "", []string{"narinfo", "sign", "--bogus"}, 2, "flag provided but not defined: -bogus"},
		{"bad narinfo", "StorePath: /gnu/store/x\n", []string{"narinfo", "verify", "--acl", filepath.Join(dir, "signing-key.pub")}, 1, "standard input: invalid narinfo: line 1: StorePath"},
		{"bad key", string(unsignedBordeaux(t)), []string{"narinfo", "sign", "--key", filepath.Join(dir, "signing-key.pub")}, 1, "--key"},
		{"missing key file", "", []string{"narinfo", "sign", "--key", filepath.Join(dir, "nope")}, 1, "no such file"},
		{"wrong store dir", string(unsignedBordeaux(t)), []string{"narinfo", "verify", "--store-dir", "/nix/store", "--acl", filepath.Join(dir, "signing-key.pub")}, 1, "not in store directory /nix/store"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runStdin(t, []byte(tt.stdin), tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, %q; want %d and %q", code, stderr, tt.code, tt.want)
			}
		})
	}
}

// TestNarinfoSignForNix signs the narinfos of a binary cache that Nix 2.8
// wrote unsigned, through the command line with a key made by `key generate
// --nix`, and checks that `nix store verify` trusts the cache only then.
func TestNarinfoSignForNix(t *testing.T) {
	n := nixtest.New(t, store.GuixDir)
	expr := `builtins.toFile "top" "uses ${builtins.toFile "a" "first"}"`
	top := strings.Trim(n.Run(t, "nix-instantiate", "--eval", "--read-write-mode", "-E", expr), `"`)
	cache := filepath.Join(t.TempDir(), "cache")
	url := "file://" + cache + "?store=/gnu/store"
	n.Run(t, "nix", "copy", "--to", url, top)
	keys := genKeys(t, "--nix", "tbfg-cli-1")
	pub := string(readTestFile(t, filepath.Join(keys, "nix-signing-key.pub")))
	names, _ := filepath.Glob(filepath.Join(cache, "*.narinfo"))
	if len(names) != 2 {
		t.Fatalf("Nix wrote %d narinfos, want 2", len(names))
	}
	// Nix trusts content-addressed items without signatures: drop the CA
	// lines so that the signatures are what counts.
	for _, name := range names {
		var kept []string
		for _, line := range strings.SplitAfter(string(readTestFile(t, name)), "\n") {
			if !strings.HasPrefix(line, "CA: ") {
				kept = append(kept, line)
			}
		}
		if err := os.WriteFile(name, []byte(strings.Join(kept, "")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	verify := n.CmdNoStore("nix", "store", "verify", "--store", url, "--option", "trusted-public-keys", pub, top)
	if err := verify.Run(); err == nil {
		t.Fatal("nix store verify trusts the unsigned cache")
	}
	for _, name := range names {
		code, signed, stderr := runStdin(t, nil, "narinfo", "sign", "--key", filepath.Join(keys, "nix-signing-key.sec"), name)
		if code != 0 {
			t.Fatalf("narinfo sign %s: %s", name, stderr)
		}
		if err := os.WriteFile(name, []byte(signed), 0o644); err != nil {
			t.Fatal(err)
		}
		if code, stdout, _ := runStdin(t, nil, "narinfo", "verify", "--acl", filepath.Join(keys, "nix-signing-key.pub"), name); code != 0 {
			t.Errorf("narinfo verify %s: %s", name, stdout)
		}
	}
	nixtest.Output(t, n.CmdNoStore("nix", "store", "verify", "--store", url, "--option", "trusted-public-keys", pub, top))
}
