package executor

import (
	"bufio"
	"encoding/binary"
	"io"

	"github.com/tbfg/tbfg-node/store/local"
)

// exportMagic marks the end of each item's NAR in `nix-store --export` format.
const exportMagic = 0x4558494e // "NIXE"

// writeExport writes items of src in the format `nix-store --import` reads:
// for each, a 1, its NAR, the magic, its path, references and deriver, and a
// 0 for "no signature"; then a final 0. Items must come references first.
func writeExport(w io.Writer, src *local.Store, items []*local.Info) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	for _, info := range items {
		writeU64(bw, 1)
		if err := src.Dump(info.Path, bw); err != nil {
			return err
		}
		writeU64(bw, exportMagic)
		writeStr(bw, string(info.Path))
		writeU64(bw, uint64(len(info.References)))
		for _, r := range info.References {
			writeStr(bw, string(r))
		}
		writeStr(bw, string(info.Deriver))
		writeU64(bw, 0)
	}
	writeU64(bw, 0)
	return bw.Flush()
}

func writeU64(w *bufio.Writer, n uint64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], n)
	w.Write(b[:]) // a bufio.Writer keeps its first error for Flush
}

// writeStr writes s as Nix's wire format does: length, bytes, zero padding
// to 8 bytes.
func writeStr(w *bufio.Writer, s string) {
	writeU64(w, uint64(len(s)))
	w.WriteString(s)
	var pad [8]byte
	w.Write(pad[:(8-len(s)%8)%8])
}
