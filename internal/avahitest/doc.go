// Package avahitest runs what a Guix System machine has for DNS-SD in tests: a
// private D-Bus system bus and an avahi-daemon on it, inside a network
// namespace the test made, and reads avahi-browse's parseable output. The
// substitutes/dnssd and integration tests share it.
package avahitest
