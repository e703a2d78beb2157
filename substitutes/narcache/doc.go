// Package narcache keeps compressed NAR files on local disk, under a total size
// limit, evicting the least recently used entries to stay under it.
//
// A key names one file, "<compression>/<store item base name>", e.g.
// "zstd/<32-character hash>-hello-2.12"; keys are checked against that strict
// pattern so no key can name a path outside the cache directory. An entry is
// written through a Writer into a temporary file inside the cache directory
// and renamed into place by Commit, so a reader never sees half an entry, and a
// crash leaves at most a temporary file that the next Open removes.
//
// The cache survives restarts: Open rebuilds its index from the directory,
// taking each entry's last use from its file's modification time, which Get
// refreshes. Eviction unlinks files; on Linux a reader that already opened an
// entry keeps reading it to the end.
//
// It knows nothing about where NARs come from or whether they verify: callers
// check a NAR before committing it.
package narcache
