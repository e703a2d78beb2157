// Package dnssd advertises a node's substitute server on the LAN by DNS-SD, as
// service type _guix_publish._tcp with instance name guix-publish-<hostname>:
// what `guix publish --advertise` announces and `guix-daemon --discover` (guix
// discover) browses. Guix only looks at IPv4 services on other hosts, takes
// http://<address>:<port> from the resolved service and ignores TXT records, so
// the advertisement carries IPv4 addresses only and an empty TXT record.
//
// Two backends sit behind Advertise. When an avahi-daemon answers on the D-Bus
// system bus (as on Guix System), the service is registered through it as an
// entry group, so that one mDNS responder owns port 5353 and the host name;
// Avahi's alternative name (e.g. "guix-publish-host #2") is taken on a name
// collision. Otherwise the package answers mDNS itself with
// github.com/grandcat/zeroconf on the configured interfaces, under this host's
// own name.
//
// It knows nothing about the HTTP server it advertises.
package dnssd
