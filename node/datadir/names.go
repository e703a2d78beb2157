package datadir

// Names of the files and subdirectories in the data dir.
const (
	// SecretFile is the mesh secret. It holds the secret as 64 lowercase
	// hexadecimal digits and a newline, mode 0600: the same text init prints
	// and join --secret takes, so it can be copied by hand.
	SecretFile = "mesh.secret"

	// The signing key pairs, in the formats of `guix archive
	// --generate-key` (/etc/guix/signing-key.*) and of Nix's `nix key
	// generate-secret` (name:base64).
	GuixSecretKeyFile = "signing-key.sec"     // Guix secret key, 0600
	GuixPublicKeyFile = "signing-key.pub"     // Guix public key, 0644
	NixSecretKeyFile  = "nix-signing-key.sec" // Nix secret key, name:base64, 0600
	NixPublicKeyFile  = "nix-signing-key.pub" // Nix public key, name:base64, 0644

	// StoreSubdir holds the built-in store's items; its database is
	// store.db beside it.
	StoreSubdir = "store"
	// LogSubdir holds one gzip build log per derivation, <drv base>.gz.
	LogSubdir = "logs"
	// NARCacheSubdir is the substitute server's NAR cache.
	NARCacheSubdir = "nar-cache"
	// BuildSubdir holds the builtin executor's build directories.
	BuildSubdir = "builds"

	// AdminSocket is the admin API's unix socket.
	AdminSocket = "admin.sock"
	// LockFile is the file whose lock a running node holds, so that two
	// processes never share one Raft log.
	LockFile = "lock"
)
