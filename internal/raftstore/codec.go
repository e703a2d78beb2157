package raftstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// codecVersion is the first byte of every stored entry.
const codecVersion = 1

// encodeLog lays an entry out as: version, type, then uvarints for index,
// term and append time (unix nanoseconds, 0 if unset), then the data and the
// extensions, each as a uvarint length and its bytes.
func encodeLog(l *raft.Log) []byte {
	b := make([]byte, 0, 2+4*binary.MaxVarintLen64+len(l.Data)+len(l.Extensions))
	b = append(b, codecVersion, byte(l.Type))
	var at uint64
	if !l.AppendedAt.IsZero() {
		at = uint64(l.AppendedAt.UnixNano())
	}
	b = binary.AppendUvarint(b, l.Index)
	b = binary.AppendUvarint(b, l.Term)
	b = binary.AppendUvarint(b, at)
	b = binary.AppendUvarint(b, uint64(len(l.Data)))
	b = append(b, l.Data...)
	b = binary.AppendUvarint(b, uint64(len(l.Extensions)))
	return append(b, l.Extensions...)
}

var errShort = errors.New("truncated")

// decodeLog parses an entry written by encodeLog.
func decodeLog(b []byte, l *raft.Log) error {
	if len(b) < 2 || b[0] != codecVersion {
		return fmt.Errorf("raft log entry: unknown encoding")
	}
	l.Type = raft.LogType(b[1])
	b = b[2:]
	var at uint64
	for _, p := range []*uint64{&l.Index, &l.Term, &at} {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return fmt.Errorf("raft log entry: %w header", errShort)
		}
		*p, b = v, b[n:]
	}
	l.AppendedAt = time.Time{}
	if at != 0 {
		l.AppendedAt = time.Unix(0, int64(at))
	}
	var err error
	if l.Data, b, err = chunk(b); err != nil {
		return fmt.Errorf("raft log entry data: %w", err)
	}
	if l.Extensions, b, err = chunk(b); err != nil {
		return fmt.Errorf("raft log entry extensions: %w", err)
	}
	if len(b) != 0 {
		return fmt.Errorf("raft log entry: %d trailing bytes", len(b))
	}
	return nil
}

// chunk splits a uvarint-length-prefixed byte string off b.
func chunk(b []byte) ([]byte, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, errShort
	}
	b = b[k:]
	if n == 0 {
		return nil, b, nil
	}
	return append([]byte(nil), b[:n]...), b[n:], nil
}
