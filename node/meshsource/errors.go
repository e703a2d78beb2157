package meshsource

import "errors"

// Errors of the package, wrapped with the store path or name concerned.
var (
	// ErrNotHeld means no active member holds the store item (or the state
	// has no record of it).
	ErrNotHeld = errors.New("no member holds the item")
	// ErrUntrusted means an item's narinfo is unsigned, signed by a key no
	// member registered, or its signature does not verify.
	ErrUntrusted = errors.New("narinfo not signed by a member key")
	// ErrRecordMismatch means a narinfo disagrees with the state's record of
	// the item, or names another store path.
	ErrRecordMismatch = errors.New("narinfo does not match the recorded item")
	// ErrBadDerivation means a .drv file being imported does not recompute:
	// its own path, an output path or a source path is not the one its
	// contents give.
	ErrBadDerivation = errors.New("derivation does not recompute")
	// ErrConfig is wrapped by New for an unusable Config.
	ErrConfig = errors.New("invalid meshsource configuration")
	// ErrNoRemote means the item is not valid locally and no Remote is
	// configured to fetch it from a holder.
	ErrNoRemote = errors.New("no remote access to holders")
	// ErrPeerFailed means a holder answered a request with an error of its
	// own (its text, bounded, is in the wrapping error).
	ErrPeerFailed = errors.New("peer failed to serve the request")
	// ErrBadResponse means a peer's response does not follow the protocol.
	ErrBadResponse = errors.New("malformed response from peer")
	// ErrPeerSilent means a peer sent or took nothing for longer than the
	// idle timeout.
	ErrPeerSilent = errors.New("peer silent for longer than the idle timeout")
)
