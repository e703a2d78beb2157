/* What the C files of the helper share (helper.h is what Go shares). */
#ifndef TBFG_SANDBOX_H
#define TBFG_SANDBOX_H

#include <sys/types.h>

/* The build, as helperSpec (spec.go) encodes it. */
struct spec {
	const char *root, *view, *staging, *tmp, *real_store, *store_target;
	const char *build_dir, *build_dir_inside, *build_dir_target, *builder;
	int network, set_groups;
	unsigned long uid, gid;
	unsigned long long max_procs;
	const char **inputs, **mount_host, **mount_rel, **argv, **env;
	int ninputs, nmounts, nrels, nargs, nenv;
};

/* sb_msg is the error of the step that failed. */
extern char sb_msg[8192];

const char *sb_errstr(int e);
int sb_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int sb_wrap(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *sb_path(const char *a, const char *b);

/* mount.c */
int sb_write_file(const char *p, const char *contents, int flags, mode_t mode);
int sb_build_root(const struct spec *s);
int sb_pivot(const char *root);

#endif
