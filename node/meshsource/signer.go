package meshsource

import (
	"fmt"

	"github.com/tbfg/tbfg-node/scheduler"
	"github.com/tbfg/tbfg-node/store/local"
	"github.com/tbfg/tbfg-node/substitutes/narinfo"
	"github.com/tbfg/tbfg-node/substitutes/nixkey"
	"github.com/tbfg/tbfg-node/substitutes/pki"
)

// Signer makes the signed narinfos a node records in the replicated state for
// the items it holds first: the outputs it built, the .drv files and sources
// it submitted.
type Signer struct {
	// Host is the host name in the Guix Signature field, as `guix publish`
	// writes it.
	Host string
	// Guix is the node's Guix signing key; its public key is the one the node
	// registered with NodeJoined.
	Guix *pki.SecretKey
	// Nix, when set, adds a Nix Sig line, so that Nix clients with
	// require-sigs accept the narinfo too.
	Nix *nixkey.SecretKey
}

// Narinfo returns the signed narinfo of a valid item of the local store, in
// the layout of today's `guix publish`. system is the System field (the
// deriver's system; "" for sources and .drv files). The URL block names the
// uncompressed NAR; servers replace it with their own.
func (s *Signer) Narinfo(info *local.Info, system string) (*narinfo.Narinfo, error) {
	if s.Guix == nil {
		return nil, fmt.Errorf("sign narinfo of %s: no Guix key", info.Path)
	}
	ni := &narinfo.Narinfo{
		StorePath: info.Path,
		NarHash:   info.NarHash(),
		NarSize:   uint64(info.Nar.Size),
		System:    system,
		CA:        info.CA,
		Files:     []narinfo.File{{URL: "nar/" + info.Path.Base(), Compression: "none", FileSize: uint64(info.Nar.Size)}},
		Layout:    narinfo.LayoutGuix,
	}
	for _, r := range info.References {
		ni.References = append(ni.References, r.Base())
	}
	if info.Deriver != "" {
		ni.Deriver = info.Deriver.Base()
	}
	if err := narinfo.SignGuix(ni, s.Host, s.Guix); err != nil {
		return nil, fmt.Errorf("sign narinfo of %s: %w", info.Path, err)
	}
	if s.Nix != nil {
		if err := narinfo.SignNix(ni, s.Nix); err != nil {
			return nil, fmt.Errorf("sign narinfo of %s: %w", info.Path, err)
		}
	}
	return ni, nil
}

// Item returns the state record of a valid local item: its narinfo fields,
// the signed narinfo text and the Guix signature.
func (s *Signer) Item(info *local.Info, system string) (scheduler.Item, error) {
	ni, err := s.Narinfo(info, system)
	if err != nil {
		return scheduler.Item{}, err
	}
	text, err := ni.Marshal()
	if err != nil {
		return scheduler.Item{}, fmt.Errorf("print narinfo of %s: %w", info.Path, err)
	}
	it := scheduler.Item{
		Path: string(info.Path), NarHash: ni.NarHash, NarSize: ni.NarSize,
		System: system, Narinfo: string(text), Signature: ni.Signatures[0],
	}
	for _, r := range info.References {
		it.References = append(it.References, string(r))
	}
	if info.Deriver != "" {
		it.Deriver = string(info.Deriver)
	}
	return it, nil
}
