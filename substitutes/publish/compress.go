package publish

import (
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Compression levels. gzip 6 is zlib's default; zstd's default level (3)
// compresses NARs about as well as gzip 9 at many times its speed.
const gzipLevel = 6

// newEncoder returns a writer that compresses with comp into w. Close ends the
// compressed stream without closing w.
func newEncoder(comp string, w io.Writer) (io.WriteCloser, error) {
	switch comp {
	case CompressionNone:
		return nopWriteCloser{w}, nil
	case CompressionGzip:
		return gzip.NewWriterLevel(w, gzipLevel)
	case CompressionZstd:
		// One goroutine per stream: the worker pool, not the encoder, bounds
		// how much CPU compression takes.
		return zstd.NewWriter(w, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault))
	}
	return nil, fmt.Errorf("compression %q: %w", comp, ErrConfig)
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
