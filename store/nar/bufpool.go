package nar

import "sync"

// bufPool keeps the bufSize buffers of Writers, of HashPath's pipeline and
// of Restore between archives. Most store items are small, and a fresh
// megabyte per archive, zeroed and faulted in, cost a node more CPU than
// the archive itself when it builds many small items (a profile of a wide
// graph of trivial builds showed a sixth of the node's time there).
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, bufSize); return &b }}

// getBuf returns an empty buffer of capacity bufSize.
func getBuf() []byte { return (*(bufPool.Get().(*[]byte)))[:0] }

// putBuf gives b back for reuse; nothing may use it afterwards. Buffers of
// another capacity are left to the garbage collector.
func putBuf(b []byte) {
	if cap(b) == bufSize {
		b = b[:0]
		bufPool.Put(&b)
	}
}
