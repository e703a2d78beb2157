/* The helper: PID 1 of a build's namespaces. The node executes its own
   binary again with HELPER_ENV=1 (run.go); the constructor below
   recognises that before the Go runtime starts, sets up the sandbox
   described on SPEC_FD, runs the builder, reaps every process orphaned to
   it, reports on STATUS_FD how the build ended and exits. It never returns
   to Go, so a helper costs an exec of the binary and a few hundred system
   calls, not the start of a Go program. Each error names the step the
   kernel refused, as "setup: STEP: ERRNO" (DESIGN.md in the parent
   directory explains the steps). */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
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

#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

/* mount_setattr's struct mount_attr and flags, which older headers lack. */
struct tbfg_mount_attr {
	uint64_t attr_set, attr_clr, propagation, userns_fd;
};
#define TBFG_ATTR_RDONLY 0x1
#define TBFG_ATTR_NOSUID 0x2
#define TBFG_ATTR_NODEV 0x4

/* Mount flags of everything the builder may write: no setuid programs, no
   device nodes of its own. */
#define NOSUIDDEV (MS_NOSUID | MS_NODEV)

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

/* msg is the error of the step that failed. */
static char msg[8192];

/* errstr is strerror as Go spells errno values: in lower case. */
static const char *errstr(int e)
{
	static char buf[256];
	snprintf(buf, sizeof buf, "%s", strerror(e));
	if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z'))
		buf[0] += 'a' - 'A';
	return buf;
}

/* fail sets msg and returns -1. */
static int fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return -1;
}

/* wrap puts a prefix before msg and returns -1. */
static int wrap(const char *fmt, ...)
{
	char prefix[4096], old[sizeof msg];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	memcpy(old, msg, sizeof old);
	snprintf(msg, sizeof msg, "%s%s", prefix, old);
	return -1;
}

/* path joins a and b (b starting with /) in a new string. */
static char *path(const char *a, const char *b)
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
		return fail("read sandbox spec: bad field %s=%s", k, v);
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
			return fail("read sandbox spec: %s", errstr(errno));
		if (n == 0)
			break;
		len += n;
		if (len == cap)
			buf = realloc(buf, cap *= 2);
	}
	close(SPEC_FD);
	if (len == 0 || buf[len - 1] != 0)
		return fail("read sandbox spec: not NUL-terminated key and value pairs");
	memset(s, 0, sizeof *s);
	for (char *p = buf; p < buf + len;) {
		char *k = p;
		p += strlen(p) + 1;
		if (p >= buf + len)
			return fail("read sandbox spec: key %s without a value", k);
		char *v = p;
		p += strlen(p) + 1;
		if (set_field(s, k, v) < 0)
			return -1;
	}
	const char *need[] = {s->root, s->view, s->staging, s->tmp, s->real_store, s->store_target,
			      s->build_dir, s->build_dir_inside, s->build_dir_target, s->builder};
	for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
		if (need[i] == NULL)
			return fail("read sandbox spec: a field is missing");
	if (s->nargs == 0)
		return fail("read sandbox spec: no argv[0]");
	if (s->nrels != s->nmounts)
		return fail("read sandbox spec: mount-host %s without mount-rel", s->mount_host[s->nmounts - 1]);
	return 0;
}

/* ---- file system steps, each failing as Go's os package words it ---- */

static int do_mkdir(const char *p, mode_t mode)
{
	if (mkdir(p, mode) < 0)
		return fail("mkdir %s: %s", p, errstr(errno));
	return 0;
}

/* mkdir_all makes p and its missing parents, as os.MkdirAll. */
static int mkdir_all(const char *p, mode_t mode)
{
	struct stat st;
	if (stat(p, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return 0;
		return fail("mkdir %s: %s", p, errstr(ENOTDIR));
	}
	char *parent = strdup(p);
	char *slash = strrchr(parent, '/');
	if (slash != NULL && slash != parent) {
		*slash = 0;
		if (mkdir_all(parent, mode) < 0) {
			free(parent);
			return -1;
		}
	}
	free(parent);
	if (mkdir(p, mode) < 0 && !(errno == EEXIST && stat(p, &st) == 0 && S_ISDIR(st.st_mode)))
		return fail("mkdir %s: %s", p, errstr(errno));
	return 0;
}

/* create_file makes p, a new empty file. */
static int create_file(const char *p)
{
	int fd = open(p, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
	if (fd < 0)
		return fail("open %s: %s", p, errstr(errno));
	close(fd);
	return 0;
}

static int write_file(const char *p, const char *contents, int flags, mode_t mode)
{
	int fd = open(p, O_WRONLY | O_CLOEXEC | flags, mode);
	if (fd < 0)
		return fail("open %s: %s", p, errstr(errno));
	size_t len = strlen(contents);
	if (write(fd, contents, len) != (ssize_t)len) {
		int e = errno;
		close(fd);
		return fail("write %s: %s", p, errstr(e));
	}
	if (close(fd) < 0)
		return fail("close %s: %s", p, errstr(errno));
	return 0;
}

static int do_symlink(const char *target, const char *p)
{
	if (symlink(target, p) < 0)
		return fail("symlink %s %s: %s", target, p, errstr(errno));
	return 0;
}

/* bind_file shows the host file from at to, a new empty file. */
static int bind_file(const char *from, const char *to)
{
	if (create_file(to) < 0)
		return -1;
	if (mount(from, to, NULL, MS_BIND, NULL) < 0)
		return fail("bind %s: %s", from, errstr(errno));
	return 0;
}

/* set_read_only makes the mount at p read-only, without setuid programs or
   devices, with the mounts below it if recursive. */
static int set_read_only(const char *p, int recursive)
{
	struct tbfg_mount_attr attr = {.attr_set = TBFG_ATTR_RDONLY | TBFG_ATTR_NOSUID | TBFG_ATTR_NODEV};
	long r = syscall(SYS_mount_setattr, AT_FDCWD, p, recursive ? AT_RECURSIVE : 0, &attr, sizeof attr);
	if (r < 0 && errno == ENOSYS) /* before Linux 5.12: the top mount only */
		r = mount("", p, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | NOSUIDDEV, NULL);
	if (r < 0)
		return fail("make %s read-only: %s", p, errstr(errno));
	return 0;
}

/* bind_dir shows the host directory from at to, created on the way,
   writable but without setuid programs or devices. */
static int bind_dir(const char *from, const char *to)
{
	if (mkdir_all(to, 0755) < 0)
		return -1;
	if (mount(from, to, NULL, MS_BIND, NULL) < 0)
		return fail("bind %s: %s", from, errstr(errno));
	if (mount("", to, NULL, MS_REMOUNT | MS_BIND | NOSUIDDEV, NULL) < 0)
		return fail("bind %s nosuid: %s", from, errstr(errno));
	return 0;
}

/* The host device nodes shown in /dev, as the daemons show them. */
static const char *const devices[] = {"null", "zero", "full", "random", "urandom", "tty"};

/* make_dev fills /dev: the host's harmless devices, a private /dev/shm, and
   a devpts instance of the build's own for /dev/ptmx. */
static int make_dev(const char *root)
{
	char *dev = path(root, "/dev"), *shm = path(dev, "/shm"), *pts = path(dev, "/pts");
	if (do_mkdir(dev, 0755) < 0 || do_mkdir(shm, 0755) < 0 || do_mkdir(pts, 0755) < 0)
		return -1;
	for (size_t i = 0; i < sizeof devices / sizeof devices[0]; i++) {
		char host[64], *to;
		snprintf(host, sizeof host, "/dev/%s", devices[i]);
		to = path(dev, host + 4);
		if (bind_file(host, to) < 0)
			return -1;
		free(to);
	}
	if (mount("shm", shm, "tmpfs", NOSUIDDEV, "mode=1777") < 0)
		return fail("mount /dev/shm: %s", errstr(errno));
	if (mount("devpts", pts, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620") < 0)
		return fail("mount devpts on /dev/pts: %s", errstr(errno));
	const char *links[][2] = {{"/ptmx", "pts/ptmx"}, {"/fd", "/proc/self/fd"}, {"/stdin", "/proc/self/fd/0"},
				  {"/stdout", "/proc/self/fd/1"}, {"/stderr", "/proc/self/fd/2"}};
	for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
		char *p = path(dev, links[i][0]);
		if (do_symlink(links[i][1], p) < 0)
			return -1;
		free(p);
	}
	return 0;
}

/* mount_proc mounts a /proc of the build's PID namespace. */
static int mount_proc(const char *root)
{
	char *p = path(root, "/proc");
	if (do_mkdir(p, 0555) < 0)
		return -1;
	if (mount("proc", p, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return fail("mount /proc: %s", errstr(errno));
	return 0;
}

/* make_etc writes the passwd, group and hosts that builders expect, naming
   the builder's ids; a build with the host's network gets the host's name
   service files instead of hosts. */
static int make_etc(const struct spec *s)
{
	char *etc = path(s->root, "/etc");
	if (do_mkdir(etc, 0755) < 0)
		return -1;
	char passwd[8192], group[256];
	snprintf(passwd, sizeof passwd,
		 "root:x:0:0:Nix build user:%3$s:/noshell\n"
		 "nixbld:x:%1$d:%2$d:Nix build user:%3$s:/noshell\n"
		 "nobody:x:65534:65534:Nobody:/:/noshell\n",
		 INSIDE_UID, INSIDE_GID, s->build_dir_inside);
	snprintf(group, sizeof group, "root:x:0:\nnixbld:!:%d:\nnogroup:x:65534:\n", INSIDE_GID);
	struct {
		const char *name, *contents;
		int bound;
	} files[] = {{"/passwd", passwd, 0}, {"/group", group, 0}, {"/hosts", "127.0.0.1 localhost\n::1 localhost\n", 0}};
	if (s->network) {
		const char *names[] = {"/resolv.conf", "/nsswitch.conf", "/services", "/hosts"};
		for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
			char *host = path("/etc", names[i]), *to = path(etc, names[i]);
			struct stat st;
			if (stat(host, &st) < 0)
				continue;
			if (strcmp(names[i], "/hosts") == 0)
				files[2].bound = 1;
			if (bind_file(host, to) < 0 || set_read_only(to, 0) < 0)
				return -1;
			free(host);
			free(to);
		}
	}
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		if (files[i].bound)
			continue;
		char *p = path(etc, files[i].name);
		if (write_file(p, files[i].contents, O_CREAT | O_TRUNC, 0444) < 0)
			return -1;
		free(p);
	}
	return 0;
}

/* show_input makes the input base appear in the view: a read-only bind of
   a directory or file, or a copy of a symlink (a bind would follow it). */
static int show_input(const struct spec *s, const char *base)
{
	char *from, *to;
	if (asprintf(&from, "%s/%s", s->staging, base) < 0 || asprintf(&to, "%s/%s", s->view, base) < 0)
		abort();
	struct stat st;
	if (lstat(from, &st) < 0)
		return fail("lstat %s: %s", from, errstr(errno));
	if (S_ISLNK(st.st_mode)) {
		char target[4096];
		ssize_t n = readlink(from, target, sizeof target - 1);
		if (n < 0)
			return fail("readlink %s: %s", from, errstr(errno));
		target[n] = 0;
		return do_symlink(target, to);
	}
	if (S_ISDIR(st.st_mode)) {
		if (do_mkdir(to, 0555) < 0)
			return -1;
		if (mount(from, to, NULL, MS_BIND, NULL) < 0)
			return fail("%s", errstr(errno));
	} else if (bind_file(from, to) < 0)
		return -1;
	free(from);
	free(to);
	return 0;
}

/* mount_store shows the builder its view of the store directory: the
   directory view, in which each input is a read-only bind of the real item
   and the builder creates its outputs. The real store directory itself is
   never shown, so nothing else in it can be read or written. */
static int mount_store(const struct spec *s)
{
	/* One read-only bind of the whole store; binds of its items inherit
	   the flags, one mount call each. */
	if (mount(s->real_store, s->staging, NULL, MS_BIND, NULL) < 0)
		return fail("bind the store: %s", errstr(errno));
	if (set_read_only(s->staging, 0) < 0)
		return -1;
	for (int i = 0; i < s->ninputs; i++)
		if (show_input(s, s->inputs[i]) < 0)
			return wrap("store item %s: ", s->inputs[i]);
	if (mkdir_all(s->store_target, 0755) < 0)
		return -1;
	if (mount(s->view, s->store_target, NULL, MS_BIND | MS_REC, NULL) < 0)
		return fail("bind the store view: %s", errstr(errno));
	if (mount("", s->store_target, NULL, MS_REMOUNT | MS_BIND | NOSUIDDEV, NULL) < 0)
		return fail("store view nosuid: %s", errstr(errno));
	/* Staging goes with the host's root when pivot detaches it: one
	   unmount (and its RCU grace period) fewer. */
	return 0;
}

/* make_mount_point creates rel below root, a directory or an empty file,
   and the directories on the way, refusing to pass through a symlink. The
   node checked that rel is clean and relative. */
static int make_mount_point(const char *root, const char *rel, int dir)
{
	char *cur = malloc(strlen(root) + strlen(rel) + 2);
	if (cur == NULL)
		abort();
	strcpy(cur, root);
	size_t rootlen = strlen(root);
	for (const char *e = rel; *e;) {
		const char *next = strchr(e, '/');
		size_t len = next ? (size_t)(next - e) : strlen(e);
		int last = next == NULL;
		size_t at = strlen(cur);
		cur[at] = '/';
		memcpy(cur + at + 1, e, len);
		cur[at + 1 + len] = 0;
		e += len + (next ? 1 : 0);
		struct stat st;
		if (lstat(cur, &st) == 0) {
			if (S_ISLNK(st.st_mode))
				return fail("%s is a symlink", cur + rootlen);
			if (!last || (S_ISDIR(st.st_mode) != 0) == dir)
				continue;
			return fail("%s exists and is not like its source", cur + rootlen);
		}
		if (errno != ENOENT)
			return fail("lstat %s: %s", cur, errstr(errno));
		if (!last || dir) {
			if (do_mkdir(cur, 0755) < 0)
				return -1;
		} else if (create_file(cur) < 0)
			return -1;
	}
	free(cur);
	return 0;
}

/* mount_paths shows the extra host paths read-only, each with what is
   mounted below it. Their mount points are made on the root tmpfs (or in
   /tmp), never through a symlink. */
static int mount_paths(const struct spec *s)
{
	for (int i = 0; i < s->nmounts; i++) {
		const char *host = s->mount_host[i], *rel = s->mount_rel[i];
		struct stat st;
		if (stat(host, &st) < 0)
			return fail("sandbox path /%s=%s: stat %s: %s", rel, host, host, errstr(errno));
		if (make_mount_point(s->root, rel, S_ISDIR(st.st_mode)) < 0)
			return wrap("sandbox path /%s=%s: ", rel, host);
		char *to;
		if (asprintf(&to, "%s/%s", s->root, rel) < 0)
			abort();
		if (mount(host, to, NULL, MS_BIND | MS_REC, NULL) < 0)
			return fail("sandbox path /%s=%s: %s", rel, host, errstr(errno));
		if (set_read_only(to, 1) < 0)
			return -1;
		free(to);
	}
	return 0;
}

/* build_root makes the builder's root on s->root, still below the host's
   root: a small tmpfs holding /dev, /proc, /etc, /tmp, the store directory
   and the build directory, and the extra paths. Nothing else of the host
   is there. */
static int build_root(const struct spec *s)
{
	/* Private first: without it a mount below could appear on the host
	   through a shared parent. */
	if (mount("", "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return fail("make mounts private: %s", errstr(errno));
	if (mount("tmpfs", s->root, "tmpfs", NOSUIDDEV, "mode=0755,size=4m,nr_inodes=4096") < 0)
		return fail("mount root tmpfs: %s", errstr(errno));
	if (make_dev(s->root) < 0 || mount_proc(s->root) < 0 || make_etc(s) < 0 || mount_store(s) < 0)
		return -1;
	char *tmp = path(s->root, "/tmp");
	if (bind_dir(s->tmp, tmp) < 0 || bind_dir(s->build_dir, s->build_dir_target) < 0)
		return -1;
	free(tmp);
	return mount_paths(s);
}

/* pivot makes root the root of the mount namespace and detaches the host's
   root, so that no path, not even through chroot tricks, leads back to the
   host's files; then it makes the root tmpfs read-only. */
static int pivot(const char *root)
{
	char *old = path(root, "/.old-root");
	if (do_mkdir(old, 0700) < 0)
		return -1;
	if (syscall(SYS_pivot_root, root, old) < 0)
		return fail("pivot_root: %s", errstr(errno));
	if (chdir("/") < 0)
		return fail("chdir /: %s", errstr(errno));
	if (umount2("/.old-root", MNT_DETACH) < 0)
		return fail("detach the host's root: %s", errstr(errno));
	if (rmdir("/.old-root") < 0)
		return fail("remove /.old-root: %s", errstr(errno));
	if (mount("", "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | NOSUIDDEV, NULL) < 0)
		return fail("make the root read-only: %s", errstr(errno));
	free(old);
	return 0;
}

/* ---- the rest of the setup ---- */

/* set_identity gives the UTS namespace the host and domain names the
   daemons give builds. */
static int set_identity(void)
{
	if (sethostname("localhost", 9) < 0)
		return fail("set host name: %s", errstr(errno));
	if (setdomainname("(none)", 6) < 0)
		return fail("set domain name: %s", errstr(errno));
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
		return fail("bring up lo: %s", errstr(errno));
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	strcpy(ifr.ifr_name, "lo");
	ifr.ifr_flags = IFF_UP | IFF_LOOPBACK | IFF_RUNNING;
	int r = ioctl(fd, SIOCSIFFLAGS, &ifr);
	int e = errno;
	close(fd);
	if (r < 0)
		return fail("bring up lo: %s", errstr(e));
	return 0;
}

/* limit_nesting allows one user namespace below the helper's: the
   builder's. Without it the builder could make namespaces of its own and
   hold every capability there, which opens much of the kernel to it
   (netfilter, new mounts of many file systems). The limit is counted in the
   helper's namespace, where the builder has no capability to raise it. */
static int limit_nesting(void)
{
	if (write_file("/proc/sys/user/max_user_namespaces", "1", 0, 0) < 0)
		return wrap("forbid nested user namespaces (user.max_user_namespaces): ");
	return 0;
}

/* set_limits bounds the number of processes of the builder's uid and turns
   off core dumps, as Nix does; the builder inherits both. */
static int set_limits(unsigned long long max_procs)
{
	struct rlimit nproc = {max_procs, max_procs}, core = {0, 0};
	if (setrlimit(RLIMIT_NPROC, &nproc) < 0)
		return fail("limit processes: %s", errstr(errno));
	if (setrlimit(RLIMIT_CORE, &core) < 0)
		return fail("turn off core dumps: %s", errstr(errno));
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
		return fail("make the helper not dumpable: %s", errstr(errno));
	if (build_root(s) < 0 || pivot(s->root) < 0 || set_identity() < 0 ||
	    bring_up_loopback(s->network) < 0 || limit_nesting() < 0 || set_limits(s->max_procs) < 0)
		return -1;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return fail("set no_new_privs: %s", errstr(errno));
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
	if (write_file(p, contents, 0, 0) < 0)
		return wrap("start builder: ");
	return 0;
}

/* start_builder starts the builder in a user namespace of its own, as the
   unprivileged INSIDE_UID mapped to the build's ids, and a cgroup namespace
   rooted at the build's cgroup. It has no capability in any namespace the
   helper made, and keeps none past its execve. It returns the builder's
   pid, or -1 with msg and *exec_err set (non-zero when the builder's
   execve failed). */
static pid_t start_builder(const struct spec *s, int *exec_err)
{
	int syncp[2], errp[2];
	*exec_err = 0;
	if (pipe2(syncp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0)
		return fail("start builder: %s", errstr(errno));
	pid_t pid = syscall(SYS_clone, CLONE_NEWUSER | CLONE_NEWCGROUP | SIGCHLD, NULL, NULL, NULL, NULL);
	if (pid < 0)
		return fail("start builder: %s", errstr(errno));
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
		return fail("start builder: the builder's process ended before it ran the builder");
	if (exec_failure(e)) {
		*exec_err = e;
		return fail("execute builder %s: %s", s->builder, errstr(e));
	}
	return fail("start builder: %s", errstr(e));
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
			return fail("wait for builder: %s", errstr(errno));
		if (pid == builder)
			return 0;
	}
}

/* helper runs the build and returns the helper's exit code, with the
   status line in line. */
static int helper(char *line, size_t size)
{
	struct spec s;
	int exec_err, st;
	fcntl(STATUS_FD, F_SETFD, FD_CLOEXEC);
	if (read_spec(&s) < 0 || setup(&s) < 0) {
		snprintf(line, size, "setup: %s\n", msg);
		return 127;
	}
	pid_t pid = start_builder(&s, &exec_err);
	if (pid < 0) {
		snprintf(line, size, "%s: %s\n", exec_err ? "exec" : "setup", msg);
		return 127;
	}
	if (reap(pid, &st) < 0) {
		snprintf(line, size, "setup: %s\n", msg);
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
	char line[sizeof msg + 64];
	int code = helper(line, sizeof line);
	size_t len = strlen(line);
	if (write(STATUS_FD, line, len) < 0)
		code = 127;
	_exit(code);
}
