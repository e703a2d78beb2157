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
// github.com/libp2p/zeroconf/v2 on the configured interfaces, under this host's
// own name, with a two-minute record TTL. That module is the maintained fork of
// grandcat/zeroconf (same API) that go-libp2p's mDNS already uses; grandcat's
// v1.0.0 can set a TTL only through a setter that races with its own
// goroutines, so with it every record would keep a TTL of almost an hour.
//
// It knows nothing about the HTTP server it advertises.
package dnssd
