// Package citest decides what a test does when something it needs is
// missing: a tool (a program or library from a Debian package, the real
// Guix) or root. On a developer's machine it skips, with a message naming
// the Debian package or the privilege to get; under CI it fails instead,
// since CI installs every tool and a skipped check there would pass
// silently. Every message also says which way CI=true turns it.
//
// The switch is the environment variable CI with the value "true", as
// .ci/run and the common CI services set it; any other value, or none,
// means a developer's machine.
//
// Root is kept apart from tools. CI runs the whole suite as root, then the
// unit tests once more as an unprivileged user, to check that a node works
// without root (a non-root node is supported). That second pass sets
// CI_UNPRIVILEGED=true as well as CI=true: there a test that needs root
// skips, as it must for that user, while a missing tool still fails. A test
// that needs root without CI_UNPRIVILEGED=true fails under CI=true, so that
// the root pass cannot lose its root tests unnoticed.
package citest
