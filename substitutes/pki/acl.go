package pki

import (
	"fmt"

	"github.com/tbfg/tbfg-node/substitutes/sexp"
)

// ACL is the list of public keys whose signatures a Guix daemon trusts for
// substitutes: /etc/guix/acl.
type ACL struct {
	// Keys are the authorized keys, in file order.
	Keys []PublicKey
}

// importTag is the tag of every ACL entry Guix writes and accepts.
var importTag = sexp.List{sexp.Atom("tag"), sexp.List{sexp.Atom("guix"), sexp.Atom("import")}}

// ParseACL reads an /etc/guix/acl file: `(acl (entry <public-key> (tag (guix
// import))) ...)`. Like Guix, it rejects an ACL with any other kind of entry.
// A bare public key, as in signing-key.pub, is read as an ACL of that key.
func ParseACL(b []byte) (*ACL, error) {
	l, err := sexp.Parse(fromText(b))
	if err != nil {
		return nil, fmt.Errorf("acl: %w", err)
	}
	switch l.Head() {
	case "public-key":
		k, err := publicKeyFromSexp(l)
		if err != nil {
			return nil, fmt.Errorf("acl: public key: %w", err)
		}
		return &ACL{Keys: []PublicKey{k}}, nil
	case "acl":
	default:
		return nil, fmt.Errorf("%w: found (%s ...), want (acl ...) or (public-key ...)", ErrBadACL, l.Head())
	}
	acl := &ACL{}
	for i, e := range l[1:] {
		k, err := aclEntry(e)
		if err != nil {
			return nil, fmt.Errorf("acl entry %d: %w", i+1, err)
		}
		acl.Keys = append(acl.Keys, k)
	}
	return acl, nil
}

// aclEntry reads one `(entry <public-key> (tag (guix import)))`.
func aclEntry(e sexp.Sexp) (PublicKey, error) {
	entry, ok := e.(sexp.List)
	if !ok || entry.Head() != "entry" || len(entry) != 3 {
		return PublicKey{}, fmt.Errorf("%w: want (entry <public-key> (tag (guix import)))", ErrBadACL)
	}
	if !sexp.Equal(entry[2], importTag) {
		return PublicKey{}, fmt.Errorf("%w: entry tag is not (tag (guix import))", ErrBadACL)
	}
	subject, ok := entry[1].(sexp.List)
	if !ok || subject.Head() != "public-key" {
		return PublicKey{}, fmt.Errorf("%w: entry subject is not a (public-key ...)", ErrBadACL)
	}
	return publicKeyFromSexp(subject)
}

// Marshal returns the ACL exactly as `guix archive --authorize` writes
// /etc/guix/acl.
func (a *ACL) Marshal() []byte {
	l := sexp.List{sexp.Atom("acl")}
	for _, k := range a.Keys {
		l = append(l, sexp.List{sexp.Atom("entry"), k.sexp(), importTag})
	}
	return toText(sexp.Advanced(l))
}

// Authorized reports whether k is in the ACL.
func (a *ACL) Authorized(k PublicKey) bool {
	if a == nil {
		return false
	}
	for _, have := range a.Keys {
		if have == k {
			return true
		}
	}
	return false
}
