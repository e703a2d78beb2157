/* What the node and the helper (helper.c) agree on; helper.go reads the
   same values through cgo. */
#ifndef TBFG_SANDBOX_HELPER_H
#define TBFG_SANDBOX_HELPER_H

/* HELPER_ENV=1 in the environment of PID 1 of a new PID namespace makes
   the helper run: set up the sandbox described on SPEC_FD and run the
   builder in it. */
#define HELPER_ENV "TBFG_BUILD_SANDBOX"
/* Where the helper reports how the build ended, in one line: "setup: …"
   (the sandbox failed), "exec: …" (the builder could not be executed),
   "exit N" or "signal N". */
#define STATUS_FD 3
/* The spec: NUL-terminated key and value strings, one after the other. */
#define SPEC_FD 4

/* The builder's ids in its user namespace, those of Nix's sandbox. */
#define INSIDE_UID 1000
#define INSIDE_GID 100

#endif
