package narinfo

import (
	"fmt"
	"strings"

	"github.com/tbfg/tbfg-node/substitutes/nixkey"
	"github.com/tbfg/tbfg-node/substitutes/pki"
)

// SignGuix signs n as `guix publish` does, with the Guix key k under the host
// name host, and replaces any Signature lines with the new one (Guix reads
// only the first). When Signed is nil the signed part is the fields printed
// in n's layout, and Signed is set to it; otherwise Signed is signed as is.
func SignGuix(n *Narinfo, host string, k *pki.SecretKey) error {
	if host == "" || strings.ContainsAny(host, "; \t\r\n") {
		return fmt.Errorf("%w: host name %q must be non-empty, without ';' or white space", ErrInvalid, host)
	}
	if err := n.Validate(); err != nil {
		return err
	}
	head, err := n.head()
	if err != nil {
		return err
	}
	sig, err := pki.SignField(head, host, k)
	if err != nil {
		return fmt.Errorf("sign narinfo of %s: %w", n.StorePath, err)
	}
	if n.Signed == nil {
		n.seal(head)
	}
	n.Signatures = []string{sig}
	return nil
}

// seal makes head, just printed from the fields, the signed part, and records
// which URL blocks and Sig lines it holds.
func (n *Narinfo) seal(head []byte) {
	n.Signed = head
	n.signedFiles, n.signedSigs = 0, 0
	switch n.Layout {
	case LayoutNix:
		n.signedFiles, n.signedSigs = len(n.Files), len(n.Sigs)
	case LayoutGuixOld:
		n.signedFiles = len(n.Files)
	}
}

// VerifyGuix checks n's first Signature line as Guix does: its signature must
// be by a key in acl over the SHA-256 of the signed part. It returns
// pki.Unsigned when n has no Signature line.
func VerifyGuix(n *Narinfo, acl *pki.ACL) pki.Status {
	if len(n.Signatures) == 0 {
		return pki.Unsigned
	}
	head, err := n.head()
	if err != nil {
		return pki.HashMismatch // no text could carry these fields under a valid signature
	}
	return pki.VerifyField(head, n.Signatures[0], acl)
}

// Fingerprint is the text Nix signs for n (see nixkey.Fingerprint).
func (n *Narinfo) Fingerprint() string {
	refs := make([]string, len(n.References))
	for i, p := range n.Paths() {
		refs[i] = string(p)
	}
	return nixkey.Fingerprint(string(n.StorePath), n.NarHash, n.NarSize, refs)
}

// SignNix adds a Nix Sig line made with k, replacing an earlier one by a key
// of the same name unless that one lies inside the Guix-signed part.
func SignNix(n *Narinfo, k *nixkey.SecretKey) error {
	if err := n.Validate(); err != nil {
		return err
	}
	sig := k.Sign(n.Fingerprint())
	keep := 0
	if n.Signed != nil {
		keep = min(n.signedSigs, len(n.Sigs))
	}
	sigs := append([]string(nil), n.Sigs[:keep]...)
	for _, s := range n.Sigs[keep:] {
		if name, _, _ := strings.Cut(s, ":"); name != k.Name {
			sigs = append(sigs, s)
		}
	}
	n.Sigs = append(sigs, sig)
	return nil
}

// CheckNix checks n's Sig lines as Nix does and says why they fail, in Guix's
// words: pki.Valid when one is a valid signature by a key in keys of the same
// name; otherwise pki.Unsigned (no Sig line), pki.CorruptSignature (a Sig line
// naming a trusted key is malformed), pki.InvalidSignature (a trusted key's
// signature does not match) or pki.UnauthorizedKey (no Sig line names a
// trusted key).
func CheckNix(n *Narinfo, keys []nixkey.PublicKey) pki.Status {
	if len(n.Sigs) == 0 {
		return pki.Unsigned
	}
	fp := n.Fingerprint()
	status := pki.UnauthorizedKey
	for _, s := range n.Sigs {
		name, _, _ := strings.Cut(s, ":")
		if !nixkey.Trusted(name, keys) {
			continue
		}
		ok, err := nixkey.Verify(fp, s, keys)
		switch {
		case ok:
			return pki.Valid
		case err != nil:
			status = pki.CorruptSignature
		case status != pki.CorruptSignature:
			status = pki.InvalidSignature
		}
	}
	return status
}

// VerifyNix reports whether Nix, trusting keys, accepts n's signatures.
func VerifyNix(n *Narinfo, keys []nixkey.PublicKey) bool {
	return CheckNix(n, keys) == pki.Valid
}
