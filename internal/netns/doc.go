// Package netns builds throwaway multi-host networks on one Linux machine for
// tests: a bridge in the root network namespace with no uplink, and one network
// namespace per host joined to it by a veth pair, with IPv4 addresses in
// 198.18.0.0/15 (the benchmarking range, never routed on real networks).
//
// Every name it creates starts with a prefix that encodes the creating process's
// PID, so parallel runs never clash and RemoveStale can delete what an aborted
// run left behind. It drives the ip(8) command from iproute2 and needs root.
//
// NewNAT builds a small internet instead: a public segment (198.18.0.0/24)
// and LANs (198.18.L.0/24) each behind a router namespace that masquerades
// with nftables and forwards nothing inbound, as a home router without port
// forwards does. Routers route neither between LANs nor multicast, so mDNS
// stays inside each LAN. Like most home routers they keep a connection's
// source port and drop unsolicited packets, so two LAN hosts dialling each
// other's router at once (TCP simultaneous open, as hole punching does)
// connect. It needs nft(8) besides ip(8).
//
// Host.Delay adds latency to the TCP connections a host opens, for WAN-like
// links: a proxy in the test process behind an nftables redirect, since the
// kernel may lack netem.
//
// It does not start the programs under test; Host.Command prepares them,
// Host.DialContext connects to them from inside their host, as a client
// there would (a server on the host's own loopback included), and
// Host.Listen listens there.
package netns
