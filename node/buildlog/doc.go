// Package buildlog is a node's directory of build logs: the agent writes
// each build's log through it, and the node reads any log back from any
// offset, following a log while its build runs.
//
// A build's log lives in one of two files, named after the base name of its
// derivation:
//
//   - <drv base>.log, plain text, while the build runs: every write reaches
//     the file at once, so readers see it grow;
//   - <drv base>.gz once the build ended: the live file compressed with gzip
//     into a temporary file, renamed into place, and only then removed.
//
// A reader opened on a live log reads the live file through its own
// descriptor and, when it follows, waits for more (woken by the writer, not
// by polling) until the writer closes; a reader opened later reads the .gz.
// The rename comes before the live log is forgotten, so every reader finds
// one file or the other, whole.
//
// Live files left by a node that stopped without closing them (a crash) are
// compressed when the directory is opened again, so that they are served as
// finished logs.
//
// Prune removes finished logs by age and total size (Retention; the caller
// says which builds failed, whose logs it keeps longer and removes last),
// leaving an empty <drv base>.removed marker dated when the log went, so
// that a reader gets a RemovedError ("removed by retention on DATE")
// rather than a bare "no log". A new log of the derivation drops the
// marker; markers go once older than the failed builds' age limit. Live
// logs are never pruned.
//
// The package knows nothing about builds, the mesh or HTTP.
package buildlog
