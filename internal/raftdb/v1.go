package raftdb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// v1Version is the first byte of every log entry the first store wrote. A
// msgpack-encoded raft.Log (a map) never starts with it.
const v1Version = 1

var errShort = errors.New("truncated")

// decodeV1 parses a log entry of the first store: version, type, then
// uvarints for index, term and append time (unix nanoseconds, 0 if unset),
// then the data and the extensions, each as a uvarint length and its bytes.
func decodeV1(b []byte, l *raft.Log) error {
	if len(b) < 2 || b[0] != v1Version {
		return errors.New("unknown encoding")
	}
	l.Type = raft.LogType(b[1])
	b = b[2:]
	var at uint64
	for _, p := range []*uint64{&l.Index, &l.Term, &at} {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return fmt.Errorf("%w header", errShort)
		}
		*p, b = v, b[n:]
	}
	l.AppendedAt = time.Time{}
	if at != 0 {
		l.AppendedAt = time.Unix(0, int64(at))
	}
	var err error
	if l.Data, b, err = chunk(b); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	if l.Extensions, b, err = chunk(b); err != nil {
		return fmt.Errorf("extensions: %w", err)
	}
	if len(b) != 0 {
		return fmt.Errorf("%d trailing bytes", len(b))
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
