// Package local is the built-in store a node manages when no daemon does: a
// logical store directory (e.g. /gnu/store) whose items live in a real
// directory under the node's data dir, and a database of the valid items with
// their NarHash, NarSize, references, deriver and registration time.
//
// Items enter the store in two ways, and neither leaves anything half-written
// valid: AddFromNAR unpacks an archive into a staging directory of the store,
// checks its hash and size and canonicalises it, then renames it into place
// and registers it; Register records the outputs a build wrote in place, after
// canonicalising them (read-only, mtime 1) and computing their hash and
// references in one pass over their NAR. Neither needs root.
// An item is valid only once it is in the database; a directory without a
// record is a leftover and is removed before the path is written again.
//
// Remove takes valid items out again (the node's store collector uses it):
// the record goes first, noted as a removal in the same transaction, then
// the directory is renamed to a trash name and deleted; Open finishes a
// removal a crash interrupted. An item a staying item refers to is never
// removed. Usage lists the items with their sizes and last use (registered,
// served by Dump, or Touch), kept in memory.
//
// Scanner finds references the way Nix does: it looks for the hash parts of
// candidate store paths in an item's NAR serialisation, as a stream.
//
// The package knows nothing about building, networking or signatures. See
// DESIGN.md for the choice of database.
package local
