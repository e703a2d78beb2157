// Package guixtest finds the real GNU Guix for tests: the guix command and
// a running guix-daemon, as ../shared/guix/setup.sh (next to the
// repository) builds them from Guix's source into /opt/guix. Debian 12 has
// no guix package.
//
// A test that needs Guix skips, with a message saying how to get it, where
// neither /opt/guix nor ../shared/guix exists: there is no Guix to be had,
// even under CI=true. Where the setup script is there but Guix is not
// ready, the test skips, or fails under CI=true (see citest): .ci/run runs
// the script before the tests.
//
// The machine's guix-daemon is shared by every test and every run on the
// machine, so tests never restart it or edit its ACL. A test that needs a
// daemon of its own starts a PrivateDaemon: a second guix-daemon on the
// same store, with its own socket, ACL, narinfo cache and discovery state,
// possibly in a network namespace, which it queries with guix repl
// (PathInfos, Substitutable). Substituter runs `guix substitute` alone, the
// program the daemon runs to check and fetch substitutes.
package guixtest
