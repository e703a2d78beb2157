package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/tbfg/tbfg-node/store"
	"github.com/tbfg/tbfg-node/substitutes/narinfo"
	"github.com/tbfg/tbfg-node/substitutes/nixkey"
	"github.com/tbfg/tbfg-node/substitutes/pki"
)

// narinfoCommands lists the "narinfo" subcommands.
func narinfoCommands() []command {
	return []command{
		{name: "narinfo sign", summary: "print a narinfo signed with a Guix or Nix secret key", run: narinfoSign},
		{name: "narinfo verify", summary: "check a narinfo's signature as Guix does and print the outcome in Guix's words", run: narinfoVerify},
	}
}

// narinfoFlags adds the flags shared by the narinfo commands.
func narinfoFlags(fs *flag.FlagSet) *string {
	return fs.String("store-dir", string(store.GuixDir), "logical store directory the narinfo's paths belong to")
}

func narinfoSign(_ context.Context, s *stdio, args []string) error {
	fs := newFlags(s, "narinfo sign", "[FILE]")
	dir := narinfoFlags(fs)
	keyFile := fs.String("key", "", "secret key `FILE`: Guix's signing-key.sec, or a Nix name:base64 key (told apart by content)")
	hostname, _ := os.Hostname()
	host := fs.String("host", hostname, "host name in Guix's Signature line")
	if err := parseNarinfoFlags(fs, args, "key", keyFile); err != nil {
		return err
	}
	key, err := readFileLimited(*keyFile)
	if err != nil {
		return fmt.Errorf("--key: %w", err)
	}
	n, err := readNarinfo(s, fs, *dir)
	if err != nil {
		return err
	}
	if err := signNarinfo(n, key, *host); err != nil {
		return err
	}
	out, err := n.Marshal()
	if err != nil {
		return err
	}
	_, err = s.out.Write(out)
	return err
}

// signNarinfo signs n with the key in key: a Guix key is an s-expression, a
// Nix key is name:base64.
func signNarinfo(n *narinfo.Narinfo, key []byte, host string) error {
	if isSexp(key) {
		k, err := pki.ParseSecretKey(key)
		if err != nil {
			return fmt.Errorf("--key: %w", err)
		}
		return narinfo.SignGuix(n, host, k)
	}
	k, err := nixkey.ParseSecretKey(key)
	if err != nil {
		return fmt.Errorf("--key: neither a Guix key (an s-expression) nor a Nix key: %w", err)
	}
	return narinfo.SignNix(n, k)
}

func narinfoVerify(_ context.Context, s *stdio, args []string) error {
	fs := newFlags(s, "narinfo verify", "[NARINFO]")
	dir := narinfoFlags(fs)
	aclFile := fs.String("acl", "", "trusted keys `FILE`: a Guix ACL (/etc/guix/acl) or public key, or Nix public keys (name:base64, white-space separated)")
	if err := parseNarinfoFlags(fs, args, "acl", aclFile); err != nil {
		return err
	}
	keys, err := readFileLimited(*aclFile)
	if err != nil {
		return fmt.Errorf("--acl: %w", err)
	}
	n, err := readNarinfo(s, fs, *dir)
	if err != nil {
		return err
	}
	status, err := verifyNarinfo(n, keys)
	if err != nil {
		return err
	}
	fmt.Fprintln(s.out, status)
	if status != pki.Valid {
		return exitCode(1)
	}
	return nil
}

// verifyNarinfo checks n's Guix signature when keys is a Guix ACL or key, and
// its Nix signatures when keys holds Nix public keys.
func verifyNarinfo(n *narinfo.Narinfo, keys []byte) (pki.Status, error) {
	if isSexp(keys) {
		acl, err := pki.ParseACL(keys)
		if err != nil {
			return 0, fmt.Errorf("--acl: %w", err)
		}
		return narinfo.VerifyGuix(n, acl), nil
	}
	nk, err := nixkey.ParsePublicKeys(keys)
	if err != nil {
		return 0, fmt.Errorf("--acl: neither a Guix ACL or key (an s-expression) nor Nix keys: %w", err)
	}
	return narinfo.CheckNix(n, nk), nil
}

// parseNarinfoFlags parses args and checks that the flag named required was
// given and at most one file was named.
func parseNarinfoFlags(fs *flag.FlagSet, args []string, required string, value *string) error {
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		fs.Usage()
		return exitCode(2)
	}
	if *value == "" {
		return fmt.Errorf("--%s is required", required)
	}
	return nil
}

// readNarinfo reads the narinfo from the file named by the only argument, or
// from standard input without one.
func readNarinfo(s *stdio, fs *flag.FlagSet, dir string) (*narinfo.Narinfo, error) {
	d := store.Dir(dir)
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("--store-dir: %w", err)
	}
	var data []byte
	var err error
	name := "standard input"
	if fs.NArg() == 1 {
		name = fs.Arg(0)
		data, err = readFileLimited(name)
	} else {
		data, err = readLimited(s.in)
	}
	if err != nil {
		return nil, err
	}
	n, err := narinfo.Parse(data, d)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return n, nil
}

// isSexp tells Guix's keys, which are s-expressions, from Nix's.
func isSexp(data []byte) bool {
	return bytes.HasPrefix(bytes.TrimSpace(data), []byte("("))
}

func readFileLimited(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := readLimited(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return data, nil
}

// readLimited reads all of r, refusing more than a narinfo may hold; key and
// ACL files are far smaller.
func readLimited(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, narinfo.MaxSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > narinfo.MaxSize {
		return nil, fmt.Errorf("more than %d bytes", narinfo.MaxSize)
	}
	return data, nil
}
