/* The helper: PID 1 of a build's namespaces. The node executes its own
   binary again with HELPER_ENV=1 (run.go); the constructor below
   recognises that before the Go runtime starts, sets up the sandbox
   described on SPEC_FD, runs the builder, reaps every process orphaned to
   it, reports on STATUS_FD how the build ended and exits. It never returns
   to Go, so a helper costs an exec of the binary and a few hundred system
   calls, not the start of a Go program. Each error names the step the
   kernel refused, as "setup: STEP: ERRNO" (DESIGN.md in the parent
   directory explains the steps). The file system steps are in mount.c. */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helper.h"
#include "sandbox.h"

#ifndef SYS_close_range
#define SYS_close_range 436
#endif

char sb_msg[8192];

/* sb_errstr is strerror as Go spells errno values: in lower case. */
const char *sb_errstr(int e)
{
	static char buf[256];
	snprintf(buf, sizeof buf, "%s", strerror(e));
	if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z'))
		buf[0] += 'a' - 'A';
	return buf;
}

/* sb_fail sets sb_msg and returns -1. */
int sb_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sb_msg, sizeof sb_msg, fmt, ap);
	va_end(ap);
	return -1;
}

/* sb_wrap puts a prefix before sb_msg and returns -1. */
int sb_wrap(const char *fmt, ...)
{
	char prefix[4096], old[sizeof sb_msg];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	memcpy(old, sb_msg, sizeof old);
	snprintf(sb_msg, sizeof sb_msg, "%s%s", prefix, old);
	return -1;
}

/* sb_path joins a and b (b starting with /) in a new string. */
char *sb_path(const char *a, const char *b)
{
	char *p;
	if (asprintf(&p, "%s%s", a, b) < 0)
		abort();
	return p;
}

/* ---- the spec ---- */

static void append(const char ***list, int *n, const char *v)
{
	*list = realloc(*list, (*n + 2) * sizeof **list);
	if (*list == NULL)
		abort();
	(*list)[(*n)++] = v;
	(*list)[*n] = NULL;
}

static int set_field(struct spec *s, const char *k, const char *v)
{
	const struct {
		const char *key;
		const char **field;
	} strs[] = {
		{"root", &s->root}, {"view", &s->view}, {"staging", &s->staging}, {"tmp", &s->tmp},
		{"real-store", &s->real_store}, {"store-target", &s->store_target},
		{"build-dir", &s->build_dir}, {"build-dir-inside", &s->build_dir_inside},
		{"build-dir-target", &s->build_dir_target}, {"builder", &s->builder},
	};
	for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
		if (strcmp(k, strs[i].key) == 0) {
			*strs[i].field = v;
			return 0;
		}
	char *end;
	unsigned long long n = strtoull(v, &end, 10);
	int num = *v != 0 && *end == 0;
	if (strcmp(k, "input") == 0)
		append(&s->inputs, &s->ninputs, v);
	else if (strcmp(k, "mount-host") == 0)
		append(&s->mount_host, &s->nmounts, v);
	else if (strcmp(k, "mount-rel") == 0 && s->nrels == s->nmounts - 1)
		append(&s->mount_rel, &s->nrels, v);
	else if (strcmp(k, "arg") == 0)
		append(&s->argv, &s->nargs, v);
	else if (strcmp(k, "env") == 0)
		append(&s->env, &s->nenv, v);
	else if (num && strcmp(k, "network") == 0)
		s->network = n != 0;
	else if (num && strcmp(k, "set-groups") == 0)
		s->set_groups = n != 0;
	else if (num && strcmp(k, "uid") == 0)
		s->uid = n;
	else if (num && strcmp(k, "gid") == 0)
		s->gid = n;
	else if (num && strcmp(k, "max-processes") == 0)
		s->max_procs = n;
	else
		return sb_fail("read sandbox spec: bad field %s=%s", k, v);
	return 0;
}

static int read_spec(struct spec *s)
{
	size_t len = 0, cap = 64 << 10;
	char *buf = malloc(cap);
	fcntl(SPEC_FD, F_SETFD, FD_CLOEXEC);
	for (;;) {
		if (buf == NULL)
			abort();
		ssize_t n = read(SPEC_FD, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return sb_fail("read sandbox spec: %s", sb_errstr(errno));
		if (n == 0)
			break;
		len += n;
		if (len == cap)
			buf = realloc(buf, cap *= 2);
	}
	close(SPEC_FD);
	if (len == 0 || buf[len - 1] != 0)
		return sb_fail("read sandbox spec: not NUL-terminated key and value pairs");
	memset(s, 0, sizeof *s);
	for (char *p = buf; p < buf + len;) {
		char *k = p;
		p += strlen(p) + 1;
		if (p >= buf + len)
			return sb_fail("read sandbox spec: key %s without a value", k);
		char *v = p;
		p += strlen(p) + 1;
		if (set_field(s, k, v) < 0)
			return -1;
	}
	const char *need[] = {s->root, s->view, s->staging, s->tmp, s->real_store, s->store_target,
			      s->build_dir, s->build_dir_inside, s->build_dir_target, s->builder};
	for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
		if (need[i] == NULL)
			return sb_fail("read sandbox spec: a field is missing");
	if (s->nargs == 0)
		return sb_fail("read sandbox spec: no argv[0]");
	if (s->nrels != s->nmounts)
		return sb_fail("read sandbox spec: mount-host %s without mount-rel", s->mount_host[s->nmounts - 1]);
	return 0;
}

/* ---- the rest of the setup ---- */

/* set_identity gives the UTS namespace the host and domain names the
   daemons give builds. */
static int set_identity(void)
{
	if (sethostname("localhost", 9) < 0)
		return sb_fail("set host name: %s", sb_errstr(errno));
	if (setdomainname("(none)", 6) < 0)
		return sb_fail("set domain name: %s", sb_errstr(errno));
	return 0;
}

/* bring_up_loopback brings up lo, the only interface of a new network
   namespace; with the host's network there is nothing to do. */
static int bring_up_loopback(int host_network)
{
	if (host_network)
		return 0;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return sb_fail("bring up lo: %s", sb_errstr(errno));
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	strcpy(ifr.ifr_name, "lo");
	ifr.ifr_flags = IFF_UP | IFF_LOOPBACK | IFF_RUNNING;
	int r = ioctl(fd, SIOCSIFFLAGS, &ifr);
	int e = errno;
	close(fd);
	if (r < 0)
		return sb_fail("bring up lo: %s", sb_errstr(e));
	return 0;
}

/* limit_nesting allows one user namespace below the helper's: the
   builder's. Without it the builder could make namespaces of its own and
   hold every capability there, which opens much of the kernel to it
   (netfilter, new mounts of many file systems). The limit is counted in the
   helper's namespace, where the builder has no capability to raise it. */
static int limit_nesting(void)
{
	if (sb_write_file("/proc/sys/user/max_user_namespaces", "1", 0, 0) < 0)
		return sb_wrap("forbid nested user namespaces (user.max_user_namespaces): ");
	return 0;
}

/* set_limits bounds the number of processes of the builder's uid and turns
   off core dumps, as Nix does; the builder inherits both. */
static int set_limits(unsigned long long max_procs)
{
	struct rlimit nproc = {max_procs, max_procs}, core = {0, 0};
	if (setrlimit(RLIMIT_NPROC, &nproc) < 0)
		return sb_fail("limit processes: %s", sb_errstr(errno));
	if (setrlimit(RLIMIT_CORE, &core) < 0)
		return sb_fail("turn off core dumps: %s", sb_errstr(errno));
	/* Like guix-daemon: the same addresses every run, which some builds
	   need to be reproducible (programs that dump their own memory
	   image). */
	int cur = personality(0xffffffff);
	if (cur != -1)
		personality(cur | ADDR_NO_RANDOMIZE);
	return 0;
}

/* setup builds the sandbox around the helper, which then only has to start
   the builder. */
static int setup(const struct spec *s)
{
	/* Without caps in our namespaces the builder still shares our host
	   uid when the node is unprivileged: not dumpable, we cannot be
	   ptraced or have our /proc entries read by it. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return sb_fail("make the helper not dumpable: %s", sb_errstr(errno));
	if (sb_build_root(s) < 0 || sb_pivot(s->root) < 0 || set_identity() < 0 ||
	    bring_up_loopback(s->network) < 0 || limit_nesting() < 0 || set_limits(s->max_procs) < 0)
		return -1;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return sb_fail("set no_new_privs: %s", sb_errstr(errno));
	return 0;
}

/* ---- the builder ---- */

/* exec_failure reports whether errno e is the builder's fault (a missing or
   unexecutable file) rather than the sandbox's. */
static int exec_failure(int e)
{
	return e == ENOENT || e == EACCES || e == ENOEXEC || e == ENOTDIR || e == ELOOP || e == E2BIG ||
	       e == ETXTBSY;
}

/* builder_child is the builder's side of start_builder: once the helper
   has written its id maps, it becomes the unprivileged INSIDE_UID, and
   executes the builder. Any failure goes to errfd as an errno. */
static void builder_child(const struct spec *s, int syncfd, int errfd)
{
	char c;
	int e;
	if (read(syncfd, &c, 1) != 1)
		_exit(253);
	if (setsid() < 0)
		goto fail;
	if (s->set_groups && setgroups(0, NULL) < 0) /* the host's supplementary groups */
		goto fail;
	if (setgid(INSIDE_GID) < 0 || setuid(INSIDE_UID) < 0)
		goto fail;
	if (chdir(s->build_dir_inside) < 0)
		goto fail;
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		goto fail;
	if (getppid() != 1) /* the helper is gone already */
		_exit(253);
	execve(s->builder, (char *const *)s->argv, (char *const *)(s->env ? s->env : (const char *[]){NULL}));
fail:
	e = errno;
	if (write(errfd, &e, sizeof e) < 0)
		_exit(254);
	_exit(253);
}

static int write_map(pid_t pid, const char *file, const char *contents)
{
	char p[64];
	snprintf(p, sizeof p, "/proc/%d/%s", (int)pid, file);
	if (sb_write_file(p, contents, 0, 0) < 0)
		return sb_wrap("start builder: ");
	return 0;
}

/* start_builder starts the builder in a user namespace of its own, as the
   unprivileged INSIDE_UID mapped to the build's ids, and a cgroup namespace
   rooted at the build's cgroup. It has no capability in any namespace the
   helper made, and keeps none past its execve. It returns the builder's
   pid, or -1 with sb_msg and *exec_err set (non-zero when the builder's
   execve failed). */
static pid_t start_builder(const struct spec *s, int *exec_err)
{
	int syncp[2], errp[2];
	*exec_err = 0;
	if (pipe2(syncp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0)
		return sb_fail("start builder: %s", sb_errstr(errno));
	pid_t pid = syscall(SYS_clone, CLONE_NEWUSER | CLONE_NEWCGROUP | SIGCHLD, NULL, NULL, NULL, NULL);
	if (pid < 0)
		return sb_fail("start builder: %s", sb_errstr(errno));
	if (pid == 0) {
		close(syncp[1]);
		close(errp[0]);
		builder_child(s, syncp[0], errp[1]);
	}
	close(syncp[0]);
	close(errp[1]);
	char uidmap[64], gidmap[64];
	snprintf(uidmap, sizeof uidmap, "%d %lu 1\n", INSIDE_UID, s->uid);
	snprintf(gidmap, sizeof gidmap, "%d %lu 1\n", INSIDE_GID, s->gid);
	int ok = write_map(pid, "uid_map", uidmap) == 0 &&
		 (s->set_groups || write_map(pid, "setgroups", "deny") == 0) &&
		 write_map(pid, "gid_map", gidmap) == 0 && write(syncp[1], "", 1) == 1;
	close(syncp[1]);
	int e = 0;
	ssize_t n = ok ? read(errp[0], &e, sizeof e) : 0;
	close(errp[0]);
	if (ok && n == 0)
		return pid;
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!ok)
		return -1;
	if (n != sizeof e)
		return sb_fail("start builder: the builder's process ended before it ran the builder");
	if (exec_failure(e)) {
		*exec_err = e;
		return sb_fail("execute builder %s: %s", s->builder, sb_errstr(e));
	}
	return sb_fail("start builder: %s", sb_errstr(e));
}

/* reap waits for every child until the builder ends, and returns its
   status. As PID 1 the helper inherits every orphan of the build. */
static int reap(pid_t builder, int *status)
{
	for (;;) {
		pid_t pid = wait4(-1, status, 0, NULL);
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid < 0)
			return sb_fail("wait for builder: %s", sb_errstr(errno));
		if (pid == builder)
			return 0;
	}
}

/* close_inherited closes every descriptor above SPEC_FD: the node passes
   none, but Go leaves open in its children whatever the node itself
   inherited without close-on-exec (from systemd, a shell, a CI runner), and
   the builder would get it. */
static void close_inherited(void)
{
	if (syscall(SYS_close_range, SPEC_FD + 1, ~0U, 0) == 0)
		return;
	struct rlimit nofile;
	if (getrlimit(RLIMIT_NOFILE, &nofile) < 0 || nofile.rlim_cur == RLIM_INFINITY)
		nofile.rlim_cur = 1 << 20;
	for (rlim_t fd = SPEC_FD + 1; fd < nofile.rlim_cur; fd++)
		close(fd);
}

/* helper runs the build and returns the helper's exit code, with the
   status line in line. */
static int helper(char *line, size_t size)
{
	struct spec s;
	int exec_err, st;
	close_inherited();
	/* Not the node's: the root's directories must be readable by the
	   builder, which makes its files with 022 as under both daemons. */
	umask(022);
	fcntl(STATUS_FD, F_SETFD, FD_CLOEXEC);
	if (read_spec(&s) < 0 || setup(&s) < 0) {
		snprintf(line, size, "setup: %s\n", sb_msg);
		return 127;
	}
	pid_t pid = start_builder(&s, &exec_err);
	if (pid < 0) {
		snprintf(line, size, "%s: %s\n", exec_err ? "exec" : "setup", sb_msg);
		return 127;
	}
	if (reap(pid, &st) < 0) {
		snprintf(line, size, "setup: %s\n", sb_msg);
		return 127;
	}
	if (WIFSIGNALED(st)) {
		snprintf(line, size, "signal %d\n", WTERMSIG(st));
		return 128 + WTERMSIG(st);
	}
	snprintf(line, size, "exit %d\n", WEXITSTATUS(st));
	return WEXITSTATUS(st);
}

/* tbfg_sandbox_helper runs before the Go runtime in every program linking
   the package. PID 1 guards against the variable leaking into an ordinary
   run. */
__attribute__((constructor)) static void tbfg_sandbox_helper(void)
{
	const char *v = getenv(HELPER_ENV);
	if (v == NULL || strcmp(v, "1") != 0 || getpid() != 1)
		return;
	char line[sizeof sb_msg + 64];
	int code = helper(line, sizeof line);
	size_t len = strlen(line);
	if (write(STATUS_FD, line, len) < 0)
		code = 127;
	_exit(code);
}
