/* The helper's file system steps (helper.c runs them): the builder's root
   on a tmpfs, its /dev, /proc, /etc, store view and paths, then pivot_root.
   Each fails as Go's os package words it ("mkdir PATH: ERRNO"), with the
   step named. */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include "helper.h"
#include "sandbox.h"

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


static int do_mkdir(const char *p, mode_t mode)
{
	if (mkdir(p, mode) < 0)
		return sb_fail("mkdir %s: %s", p, sb_errstr(errno));
	return 0;
}

/* mkdir_all makes p and its missing parents, as os.MkdirAll. */
static int mkdir_all(const char *p, mode_t mode)
{
	struct stat st;
	if (stat(p, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return 0;
		return sb_fail("mkdir %s: %s", p, sb_errstr(ENOTDIR));
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
		return sb_fail("mkdir %s: %s", p, sb_errstr(errno));
	return 0;
}

/* create_file makes p, a new empty file. */
static int create_file(const char *p)
{
	int fd = open(p, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
	if (fd < 0)
		return sb_fail("open %s: %s", p, sb_errstr(errno));
	close(fd);
	return 0;
}

int sb_write_file(const char *p, const char *contents, int flags, mode_t mode)
{
	int fd = open(p, O_WRONLY | O_CLOEXEC | flags, mode);
	if (fd < 0)
		return sb_fail("open %s: %s", p, sb_errstr(errno));
	size_t len = strlen(contents);
	if (write(fd, contents, len) != (ssize_t)len) {
		int e = errno;
		close(fd);
		return sb_fail("write %s: %s", p, sb_errstr(e));
	}
	if (close(fd) < 0)
		return sb_fail("close %s: %s", p, sb_errstr(errno));
	return 0;
}

static int do_symlink(const char *target, const char *p)
{
	if (symlink(target, p) < 0)
		return sb_fail("symlink %s %s: %s", target, p, sb_errstr(errno));
	return 0;
}

/* bind_file shows the host file from at to, a new empty file. */
static int bind_file(const char *from, const char *to)
{
	if (create_file(to) < 0)
		return -1;
	if (mount(from, to, NULL, MS_BIND, NULL) < 0)
		return sb_fail("bind %s: %s", from, sb_errstr(errno));
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
		return sb_fail("make %s read-only: %s", p, sb_errstr(errno));
	return 0;
}

/* bind_dir shows the host directory from at to, created on the way,
   writable but without setuid programs or devices. */
static int bind_dir(const char *from, const char *to)
{
	if (mkdir_all(to, 0755) < 0)
		return -1;
	if (mount(from, to, NULL, MS_BIND, NULL) < 0)
		return sb_fail("bind %s: %s", from, sb_errstr(errno));
	if (mount("", to, NULL, MS_REMOUNT | MS_BIND | NOSUIDDEV, NULL) < 0)
		return sb_fail("bind %s nosuid: %s", from, sb_errstr(errno));
	return 0;
}

/* The host device nodes shown in /dev, as the daemons show them. */
static const char *const devices[] = {"null", "zero", "full", "random", "urandom", "tty"};

/* make_dev fills /dev: the host's harmless devices, a private /dev/shm, and
   a devpts instance of the build's own for /dev/ptmx. */
static int make_dev(const char *root)
{
	char *dev = sb_path(root, "/dev"), *shm = sb_path(dev, "/shm"), *pts = sb_path(dev, "/pts");
	if (do_mkdir(dev, 0755) < 0 || do_mkdir(shm, 0755) < 0 || do_mkdir(pts, 0755) < 0)
		return -1;
	for (size_t i = 0; i < sizeof devices / sizeof devices[0]; i++) {
		char host[64], *to;
		snprintf(host, sizeof host, "/dev/%s", devices[i]);
		to = sb_path(dev, host + 4);
		if (bind_file(host, to) < 0)
			return -1;
		free(to);
	}
	if (mount("shm", shm, "tmpfs", NOSUIDDEV, "mode=1777") < 0)
		return sb_fail("mount /dev/shm: %s", sb_errstr(errno));
	if (mount("devpts", pts, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620") < 0)
		return sb_fail("mount devpts on /dev/pts: %s", sb_errstr(errno));
	const char *links[][2] = {{"/ptmx", "pts/ptmx"}, {"/fd", "/proc/self/fd"}, {"/stdin", "/proc/self/fd/0"},
				  {"/stdout", "/proc/self/fd/1"}, {"/stderr", "/proc/self/fd/2"}};
	for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
		char *p = sb_path(dev, links[i][0]);
		if (do_symlink(links[i][1], p) < 0)
			return -1;
		free(p);
	}
	return 0;
}

/* mount_proc mounts a /proc of the build's PID namespace. */
static int mount_proc(const char *root)
{
	char *p = sb_path(root, "/proc");
	if (do_mkdir(p, 0555) < 0)
		return -1;
	if (mount("proc", p, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return sb_fail("mount /proc: %s", sb_errstr(errno));
	return 0;
}

/* make_etc writes the passwd, group and hosts that builders expect, naming
   the builder's ids; a build with the host's network gets the host's name
   service files instead of hosts. */
static int make_etc(const struct spec *s)
{
	char *etc = sb_path(s->root, "/etc");
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
			char *host = sb_path("/etc", names[i]), *to = sb_path(etc, names[i]);
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
		char *p = sb_path(etc, files[i].name);
		if (sb_write_file(p, files[i].contents, O_CREAT | O_TRUNC, 0444) < 0)
			return -1;
		free(p);
	}
	return 0;
}

/* clean_element reports whether the len bytes at e are a path element that
   stays where it is: not empty, "." or "..". */
static int clean_element(const char *e, size_t len)
{
	return len > 0 && !(len == 1 && e[0] == '.') && !(len == 2 && e[0] == '.' && e[1] == '.');
}

/* show_input makes the input base appear in the view: a read-only bind of
   a directory or file, or a copy of a symlink (a bind would follow it). */
static int show_input(const struct spec *s, const char *base)
{
	char *from, *to;
	if (strchr(base, '/') != NULL || !clean_element(base, strlen(base)))
		return sb_fail("not a store item's base name");
	if (asprintf(&from, "%s/%s", s->staging, base) < 0 || asprintf(&to, "%s/%s", s->view, base) < 0)
		abort();
	struct stat st;
	if (lstat(from, &st) < 0)
		return sb_fail("lstat %s: %s", from, sb_errstr(errno));
	if (S_ISLNK(st.st_mode)) {
		char target[4096];
		ssize_t n = readlink(from, target, sizeof target - 1);
		if (n < 0)
			return sb_fail("readlink %s: %s", from, sb_errstr(errno));
		target[n] = 0;
		return do_symlink(target, to);
	}
	if (S_ISDIR(st.st_mode)) {
		if (do_mkdir(to, 0555) < 0)
			return -1;
		if (mount(from, to, NULL, MS_BIND, NULL) < 0)
			return sb_fail("%s", sb_errstr(errno));
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
		return sb_fail("bind the store: %s", sb_errstr(errno));
	if (set_read_only(s->staging, 0) < 0)
		return -1;
	for (int i = 0; i < s->ninputs; i++)
		if (show_input(s, s->inputs[i]) < 0)
			return sb_wrap("store item %s: ", s->inputs[i]);
	if (mkdir_all(s->store_target, 0755) < 0)
		return -1;
	if (mount(s->view, s->store_target, NULL, MS_BIND | MS_REC, NULL) < 0)
		return sb_fail("bind the store view: %s", sb_errstr(errno));
	if (mount("", s->store_target, NULL, MS_REMOUNT | MS_BIND | NOSUIDDEV, NULL) < 0)
		return sb_fail("store view nosuid: %s", sb_errstr(errno));
	/* Staging goes with the host's root when pivot detaches it: one
	   unmount (and its RCU grace period) fewer. */
	return 0;
}

/* make_mount_point creates rel below root, a directory or an empty file,
   and the directories on the way, refusing to pass through a symlink. The
   node made rel clean and relative; the helper refuses it otherwise rather
   than mount elsewhere. */
static int make_mount_point(const char *root, const char *rel, int dir)
{
	char *cur = malloc(strlen(root) + strlen(rel) + 2);
	if (cur == NULL)
		abort();
	strcpy(cur, root);
	size_t rootlen = strlen(root);
	if (*rel == 0)
		return sb_fail("/: not a clean path below the root");
	for (const char *e = rel; *e;) {
		const char *next = strchr(e, '/');
		size_t len = next ? (size_t)(next - e) : strlen(e);
		int last = next == NULL;
		if (!clean_element(e, len) || (next != NULL && next[1] == 0))
			return sb_fail("/%s: not a clean path below the root", rel);
		size_t at = strlen(cur);
		cur[at] = '/';
		memcpy(cur + at + 1, e, len);
		cur[at + 1 + len] = 0;
		e += len + (next ? 1 : 0);
		struct stat st;
		if (lstat(cur, &st) == 0) {
			if (S_ISLNK(st.st_mode))
				return sb_fail("%s is a symlink", cur + rootlen);
			if (!last || (S_ISDIR(st.st_mode) != 0) == dir)
				continue;
			return sb_fail("%s exists and is not like its source", cur + rootlen);
		}
		if (errno != ENOENT)
			return sb_fail("lstat %s: %s", cur, sb_errstr(errno));
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
			return sb_fail("sandbox path /%s=%s: stat %s: %s", rel, host, host, sb_errstr(errno));
		if (make_mount_point(s->root, rel, S_ISDIR(st.st_mode)) < 0)
			return sb_wrap("sandbox path /%s=%s: ", rel, host);
		char *to;
		if (asprintf(&to, "%s/%s", s->root, rel) < 0)
			abort();
		if (mount(host, to, NULL, MS_BIND | MS_REC, NULL) < 0)
			return sb_fail("sandbox path /%s=%s: %s", rel, host, sb_errstr(errno));
		if (set_read_only(to, 1) < 0)
			return -1;
		free(to);
	}
	return 0;
}

/* sb_build_root makes the builder's root on s->root, still below the host's
   root: a small tmpfs holding /dev, /proc, /etc, /tmp, the store directory
   and the build directory, and the extra paths. Nothing else of the host
   is there. */
int sb_build_root(const struct spec *s)
{
	/* Private first: without it a mount below could appear on the host
	   through a shared parent. */
	if (mount("", "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return sb_fail("make mounts private: %s", sb_errstr(errno));
	if (mount("tmpfs", s->root, "tmpfs", NOSUIDDEV, "mode=0755,size=4m,nr_inodes=4096") < 0)
		return sb_fail("mount root tmpfs: %s", sb_errstr(errno));
	if (make_dev(s->root) < 0 || mount_proc(s->root) < 0 || make_etc(s) < 0 || mount_store(s) < 0)
		return -1;
	char *tmp = sb_path(s->root, "/tmp");
	if (bind_dir(s->tmp, tmp) < 0 || bind_dir(s->build_dir, s->build_dir_target) < 0)
		return -1;
	free(tmp);
	return mount_paths(s);
}

/* sb_pivot makes root the root of the mount namespace and detaches the host's
   root, so that no path, not even through chroot tricks, leads back to the
   host's files; then it makes the root tmpfs read-only. */
int sb_pivot(const char *root)
{
	char *old = sb_path(root, "/.old-root");
	if (do_mkdir(old, 0700) < 0)
		return -1;
	if (syscall(SYS_pivot_root, root, old) < 0)
		return sb_fail("pivot_root: %s", sb_errstr(errno));
	if (chdir("/") < 0)
		return sb_fail("chdir /: %s", sb_errstr(errno));
	if (umount2("/.old-root", MNT_DETACH) < 0)
		return sb_fail("detach the host's root: %s", sb_errstr(errno));
	if (rmdir("/.old-root") < 0)
		return sb_fail("remove /.old-root: %s", sb_errstr(errno));
	if (mount("", "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | NOSUIDDEV, NULL) < 0)
		return sb_fail("make the root read-only: %s", sb_errstr(errno));
	free(old);
	return 0;
}

