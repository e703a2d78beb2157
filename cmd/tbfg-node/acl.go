package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"

	"github.com/tbfg/tbfg-node/internal/atomicfile"
	"github.com/tbfg/tbfg-node/node/adminapi"
	"github.com/tbfg/tbfg-node/substitutes/pki"
)

// aclCommands lists the commands that hand the mesh's member keys to Guix.
func aclCommands() []command {
	return []command{
		{name: "acl", summary: "print the Guix ACL (or with --nix, Nix's trusted-public-keys) of every member key of the mesh", run: cmdACL},
		{name: "authorize", summary: "authorize the mesh's member keys for guix-daemon", run: cmdAuthorize},
	}
}

// cmdACL prints the ACL of the member keys in the format of /etc/guix/acl;
// with --nix their Nix keys as one trusted-public-keys line of nix.conf; with
// --json the members and all their keys.
func cmdACL(ctx context.Context, s *stdio, args []string) error {
	fs := newFlags(s, "acl", "")
	cf := newClientFlags(fs, true)
	nix := fs.Bool("nix", false, "print the members' Nix keys as a nix.conf trusted-public-keys line")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	v, err := fetchACL(ctx, cf)
	if err != nil {
		return err
	}
	switch {
	case cf.json:
		return printJSON(s.out, v)
	case *nix:
		_, err = fmt.Fprintln(s.out, "trusted-public-keys = "+strings.Join(v.NixKeys, " "))
	default:
		_, err = fmt.Fprintln(s.out, v.ACL)
	}
	return err
}

func fetchACL(ctx context.Context, cf *clientFlags) (adminapi.ACLView, error) {
	cl, ctx, cancel := cf.client(ctx)
	defer cancel()
	defer cl.Close()
	return cl.ACL(ctx)
}

// cmdAuthorize adds the member keys to Guix's ACL: with --acl FILE, or when
// guix is not on PATH, by merging them into FILE (default /etc/guix/acl);
// else through `guix archive --authorize`, which takes one key per call.
func cmdAuthorize(ctx context.Context, s *stdio, args []string) error {
	fs := newFlags(s, "authorize", "")
	cf := newClientFlags(fs, false)
	file := fs.String("acl", "", "merge the keys into ACL `FILE` instead of running guix archive --authorize")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	v, err := fetchACL(ctx, cf)
	if err != nil {
		return err
	}
	acl, err := pki.ParseACL([]byte(v.ACL))
	if err != nil {
		return fmt.Errorf("node answered a bad ACL: %w", err)
	}
	if _, lookErr := exec.LookPath("guix"); *file == "" && lookErr == nil {
		return guixAuthorize(ctx, s, acl)
	}
	if *file == "" {
		*file = defaultGuixACL
	}
	added, err := mergeACLFile(*file, acl)
	if err != nil {
		return err
	}
	fmt.Fprintf(s.out, "%d of %d keys added to %s.\n", added, len(acl.Keys), *file)
	return nil
}

// defaultGuixACL is guix-daemon's ACL file.
const defaultGuixACL = "/etc/guix/acl"

// guixAuthorize runs `guix archive --authorize` for each key, the key on
// its standard input.
func guixAuthorize(ctx context.Context, s *stdio, acl *pki.ACL) error {
	for _, k := range acl.Keys {
		cmd := exec.CommandContext(ctx, "guix", "archive", "--authorize")
		cmd.Stdin = bytes.NewReader(k.Marshal())
		cmd.Stdout, cmd.Stderr = s.out, s.err
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("guix archive --authorize of key %s: %w", k, err)
		}
	}
	fmt.Fprintf(s.out, "%d keys authorized with guix archive --authorize.\n", len(acl.Keys))
	return nil
}

// mergeACLFile adds the keys of add missing from the ACL in path (created
// if absent) and rewrites it atomically. It returns how many it added.
func mergeACLFile(path string, add *pki.ACL) (int, error) {
	cur := &pki.ACL{}
	perm := os.FileMode(0o644)
	b, err := os.ReadFile(path)
	existed := err == nil
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return 0, fmt.Errorf("--acl: %w", err)
	case len(bytes.TrimSpace(b)) > 0:
		if cur, err = pki.ParseACL(b); err != nil {
			return 0, fmt.Errorf("--acl %s: %w", path, err)
		}
	}
	if fi, err := os.Stat(path); err == nil {
		perm = fi.Mode().Perm()
	}
	added := 0
	for _, k := range add.Keys {
		if !slices.Contains(cur.Keys, k) {
			cur.Keys = append(cur.Keys, k)
			added++
		}
	}
	if added == 0 && existed {
		return 0, nil
	}
	if err := atomicfile.Write(path, append(cur.Marshal(), '\n'), perm); err != nil {
		return 0, fmt.Errorf("--acl: %w", err)
	}
	return added, nil
}
