// Package atomicfile writes whole files so that a crash or a failed write
// never leaves a half-written one: the data goes to a temporary file in the
// same directory, is synced, and only then takes the file's name. It knows
// nothing of what the files hold.
package atomicfile
