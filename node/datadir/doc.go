// Package datadir owns the layout of a node's data directory: the names of
// the files and subdirectories in it, the lock a running node holds on it,
// and the loading of the mesh secret and the signing keys stored in it.
//
// The data directory (default /var/lib/tbfg for root, else
// $XDG_STATE_HOME/tbfg) is mode 0700 and holds:
//
//	mesh.secret          the mesh secret: 64 hexadecimal digits and a newline,
//	                     0600; the same text init prints and join --secret takes
//	signing-key.sec/.pub the node's Guix signing key pair, as `guix archive
//	                     --generate-key` writes it (secret 0600); the public
//	                     key is gossiped and registered in the build queue
//	nix-signing-key.sec/.pub
//	                     the node's Nix signing key pair, name:base64, named
//	                     <hostname>-1 (secret 0600)
//	store/, store.db     the built-in store: items of the logical store
//	                     directory --store-dir (default /gnu/store) and their
//	                     database; submitted .drv files are imported here
//	logs/                one gzip build log per derivation, <drv base>.gz
//	nar-cache/           the substitute server's NAR cache (--nar-cache-size)
//	builds/              the builtin executor's build directories
//	admin.sock           the admin API: HTTP with JSON bodies on a unix socket, 0600
//	lock                 flock(2)ed by the running node, so two never share a data dir
//
// and the mesh's own files (identity, Raft state, address book), whose
// names package mesh owns. Missing keys are created when the node starts
// (init, join or run), before it joins the mesh; existing ones are kept.
//
// The package knows nothing of what the files are used for once loaded.
package datadir
