package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"

	"github.com/tbfg/tbfg-node/internal/atomicfile"
	"github.com/tbfg/tbfg-node/node/adminapi"
	"github.com/tbfg/tbfg-node/substitutes/pki"
)

// memberLeft is the status of a member that left the mesh (adminapi.ACLMember).
const memberLeft = "left"

// cmdAuthorize brings guix-daemon's ACL in line with the mesh, as the local
// node knows it or as --from gives it: it adds the keys of the members that
// have not left, each once, and with --prune removes the keys of members
// that left. Keys of members that left are
// never added: the mesh no longer vouches for them. With --acl FILE, or when
// guix is not on PATH, it edits FILE (default: the ACL guix uses); else it
// adds each key with `guix archive --authorize`, which takes one key per
// call and does not look for duplicates, so only the missing ones are given.
// Removing needs the file itself: guix has no command for it.
func cmdAuthorize(ctx context.Context, s *stdio, args []string) error {
	fs := newFlags(s, "authorize", "")
	cf := newClientFlags(fs, false)
	file := fs.String("acl", "", "edit ACL `FILE` instead of running guix archive --authorize")
	prune := fs.Bool("prune", false, "remove the keys of members that left the mesh from the ACL")
	from := fs.String("from", "", "read the members from `FILE` (- for stdin), as tbfg-node acl --json prints them on a node, instead of asking the local node")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	v, err := membersFrom(ctx, s, cf, *from)
	if err != nil {
		return err
	}
	current, left, err := memberKeys(v)
	if err != nil {
		return fmt.Errorf("node answered a bad ACL: %w", err)
	}
	_, lookErr := exec.LookPath("guix")
	useGuix := *file == "" && lookErr == nil
	if *file == "" {
		*file = guixACLFile()
	}
	acl, err := readACLFile(*file)
	if err != nil {
		return err
	}
	if err := pruneLeft(s.out, *file, acl, left, *prune); err != nil {
		return err
	}
	missing := slices.DeleteFunc(slices.Clone(current), acl.Authorized)
	if useGuix {
		if err := guixAuthorize(ctx, s, missing); err != nil {
			return err
		}
		fmt.Fprintf(s.out, "%d of %d member keys authorized with guix archive --authorize (%d already in %s).\n",
			len(missing), len(current), len(current)-len(missing), *file)
		return nil
	}
	if len(missing) > 0 {
		acl.Keys = append(acl.Keys, missing...)
		if err := writeACLFile(*file, acl); err != nil {
			return err
		}
	}
	fmt.Fprintf(s.out, "%d of %d member keys added to %s (%d already there).\n",
		len(missing), len(current), *file, len(current)-len(missing))
	return nil
}

// membersFrom returns the members and their keys: from the local node, or
// from file ("-": standard input) as `tbfg-node acl --json` prints them, for
// a Guix machine that runs no node.
func membersFrom(ctx context.Context, s *stdio, cf *clientFlags, file string) (adminapi.ACLView, error) {
	var v adminapi.ACLView
	if file == "" {
		return fetchACL(ctx, cf)
	}
	var b []byte
	var err error
	if file == "-" {
		b, err = io.ReadAll(s.in)
	} else {
		b, err = os.ReadFile(file)
	}
	if err != nil {
		return v, fmt.Errorf("--from: %w", err)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("--from %s: not what tbfg-node acl --json prints: %w", file, err)
	}
	if len(v.Members) == 0 {
		return v, fmt.Errorf("--from %s: no members", file)
	}
	return v, nil
}

// memberKeys splits the keys of the members in v: those of members that
// have not left (active or lost), and those only members that left have.
// Each key appears once, in registration order.
func memberKeys(v adminapi.ACLView) (current, left []pki.PublicKey, err error) {
	for _, m := range v.Members {
		k, err := pki.ParsePublicKey([]byte(m.Key))
		if err != nil {
			return nil, nil, fmt.Errorf("key of member %s: %w", m.ID, err)
		}
		if m.Status != memberLeft && !slices.Contains(current, k) {
			current = append(current, k)
		}
	}
	for _, m := range v.Members {
		k, _ := pki.ParsePublicKey([]byte(m.Key)) // parsed above
		if m.Status == memberLeft && !slices.Contains(current, k) && !slices.Contains(left, k) {
			left = append(left, k)
		}
	}
	return current, left, nil
}

// guixACLFile is the ACL `guix archive --authorize` edits and guix-daemon's
// substituter reads: acl in $GUIX_CONFIGURATION_DIRECTORY, else in
// /etc/guix.
func guixACLFile() string {
	if dir := os.Getenv("GUIX_CONFIGURATION_DIRECTORY"); dir != "" {
		return filepath.Join(dir, "acl")
	}
	return "/etc/guix/acl"
}

// readACLFile reads the ACL in path; a missing or empty file is an empty
// ACL.
func readACLFile(path string) (*pki.ACL, error) {
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return &pki.ACL{}, nil
	case err != nil:
		return nil, fmt.Errorf("read the ACL: %w", err)
	case len(bytes.TrimSpace(b)) == 0:
		return &pki.ACL{}, nil
	}
	acl, err := pki.ParseACL(b)
	if err != nil {
		return nil, fmt.Errorf("ACL %s: %w", path, err)
	}
	return acl, nil
}

// writeACLFile replaces the ACL in path atomically, keeping its mode (0644,
// as Guix writes it, for a new file).
func writeACLFile(path string, acl *pki.ACL) error {
	perm := os.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		perm = fi.Mode().Perm()
	}
	if err := atomicfile.Write(path, append(acl.Marshal(), '\n'), perm); err != nil {
		return fmt.Errorf("write the ACL: %w", err)
	}
	return nil
}

// pruneLeft removes the keys of left from acl and rewrites path when it
// held any, if prune; otherwise it only says how many are still there.
func pruneLeft(w io.Writer, path string, acl *pki.ACL, left []pki.PublicKey, prune bool) error {
	n := len(acl.Keys)
	kept := slices.DeleteFunc(slices.Clone(acl.Keys), func(k pki.PublicKey) bool { return slices.Contains(left, k) })
	switch {
	case len(kept) == n:
		return nil
	case !prune:
		fmt.Fprintf(w, "%s of members that left the mesh still in %s: tbfg-node authorize --prune removes them.\n",
			countKeys(n-len(kept)), path)
		return nil
	}
	acl.Keys = kept
	if err := writeACLFile(path, acl); err != nil {
		return err
	}
	fmt.Fprintf(w, "%s of members that left the mesh removed from %s.\n", countKeys(n-len(kept)), path)
	return nil
}

// countKeys is "1 key" or "N keys".
func countKeys(n int) string {
	if n == 1 {
		return "1 key"
	}
	return fmt.Sprintf("%d keys", n)
}

// guixAuthorize runs `guix archive --authorize` for each key, the key on
// its standard input.
func guixAuthorize(ctx context.Context, s *stdio, keys []pki.PublicKey) error {
	for _, k := range keys {
		cmd := exec.CommandContext(ctx, "guix", "archive", "--authorize")
		cmd.Stdin = bytes.NewReader(k.Marshal())
		cmd.Stdout, cmd.Stderr = s.out, s.err
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("guix archive --authorize of key %s: %w", k, err)
		}
	}
	return nil
}
