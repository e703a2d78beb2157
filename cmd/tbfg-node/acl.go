package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/tbfg/tbfg-node/node/adminapi"
)

// aclCommands lists the commands that hand the mesh's member keys to Guix.
func aclCommands() []command {
	return []command{
		{name: "acl", summary: "print the Guix ACL (or with --nix, Nix's trusted-public-keys) of every member key of the mesh", run: cmdACL},
		{name: "authorize", summary: "authorize the mesh's member keys for guix-daemon (--prune: drop those of members that left)", run: cmdAuthorize},
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
