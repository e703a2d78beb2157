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
package guixtest
