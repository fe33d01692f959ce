/* sandbox/mounts.c -- builds the sandbox's filesystem inside a private mount namespace.
 *
 * Theory: a tmpfs becomes the new root (pivot_root), the host root is visible at /oldroot
 * only while we build, then detached.  Everything the program sees is listed here:
 *   /usr /bin /sbin /lib*   read-only (nosuid, nodev) from the host or the --rootfs image
 *   /etc                    synthetic passwd/group/hosts + a short list of read-only files
 *   /proc                   fresh, for the new pid namespace; sensitive files masked
 *   /dev                    null zero full random urandom tty (binds), links, shm (capped tmpfs)
 *   /tmp                    capped tmpfs;  /output  capped tmpfs, handed to the supervisor
 *   --ro / --rw mounts      created beneath our own tmpfs only (never inside a host mount)
 *   /                       read-only at the end
 * Runs in the child before privileges are dropped; reports failures with the step name and
 * never logs.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/path.h"
#include "sandbox/contain.h"
#include "sandbox/mounts.h"

#define OLD "/oldroot"

static const char *const SYSTEM_DIRS[] = {
	"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", NULL,
};

/* Read-only files and directories taken from the image's /etc when present: what the dynamic
 * loader, BLAS alternatives, matplotlib, time zones and MIME guessing need.  Never shadow,
 * ssh keys, or anything with credentials. */
static const char *const ETC_FILES[] = {
	"ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "matplotlibrc",
	"localtime", "timezone", "mime.types", "fonts", "os-release", NULL,
};
/* plus every entry named python3* (Debian's sitecustomize lives in /etc/python3.X) */

static const char *const DEVICES[] = {"null", "zero", "full", "random", "urandom", "tty", NULL};

/* Masked inside /proc: bound over by /dev/null (files) or made read-only (dirs). */
static const char *const PROC_MASK_FILES[] = {"kcore", "keys", "timer_list", "sysrq-trigger",
					      NULL};
static const char *const PROC_RO_DIRS[] = {"sys", "irq", "bus", "fs", NULL};

static void fail(int ctl, const char *step, const char *detail)
{
	sbx_child_fail(ctl, step, errno, detail);
}

static int set_attr(const char *path, unsigned set, bool recursive)
{
	struct mount_attr a = {.attr_set = set};
	return mount_setattr(AT_FDCWD, path, recursive ? AT_RECURSIVE : 0, &a, sizeof a);
}

static void make_dir(int ctl, const char *path, mode_t mode)
{
	if (mkdir(path, mode) < 0 && errno != EEXIST)
		fail(ctl, "mkdir", path);
}

static void make_file(int ctl, const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0444);
	if (fd < 0)
		fail(ctl, "create", path);
	close(fd);
}

static void write_file(int ctl, const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0444);
	if (fd < 0)
		fail(ctl, "etc", path);
	size_t n = strlen(text);
	if (write(fd, text, n) != (ssize_t)n)
		fail(ctl, "etc", path);
	close(fd);
}

/* Mirrors src (a path under /oldroot) at dest: symlinks are recreated, directories and files
 * bind-mounted read-only. Missing sources are skipped (returns 0), other failures report. */
static int mirror(int ctl, const char *src, const char *dest, bool must_exist)
{
	struct stat st;
	if (lstat(src, &st) < 0) {
		if (errno == ENOENT && !must_exist)
			return 0;
		fail(ctl, "system-dirs", src);
	}
	if (S_ISLNK(st.st_mode)) {
		char target[PATH_MAX];
		ssize_t n = readlink(src, target, sizeof target - 1);
		if (n < 0)
			fail(ctl, "system-dirs", src);
		target[n] = '\0';
		if (symlink(target, dest) < 0)
			fail(ctl, "system-dirs", dest);
		return 1;
	}
	if (S_ISDIR(st.st_mode))
		make_dir(ctl, dest, 0755);
	else if (S_ISREG(st.st_mode))
		make_file(ctl, dest);
	else
		return 0; /* sockets, fifos, devices: never exported */
	if (mount(src, dest, NULL, MS_BIND | MS_REC, NULL) < 0)
		fail(ctl, "bind", src);
	if (set_attr(dest, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, true) < 0)
		fail(ctl, "bind-readonly", dest);
	return 1;
}

static void build_system(const struct sbx_plan *p, int ctl)
{
	char src[PATH_MAX], dest[PATH_MAX];
	for (size_t i = 0; SYSTEM_DIRS[i]; i++) {
		snprintf(src, sizeof src, OLD "%s/%s", p->sysroot, SYSTEM_DIRS[i]);
		snprintf(dest, sizeof dest, "/%s", SYSTEM_DIRS[i]);
		mirror(ctl, src, dest, i == 0);
	}
}

static void build_etc(const struct sbx_plan *p, int ctl)
{
	char src[PATH_MAX], dest[PATH_MAX], text[1024];
	make_dir(ctl, "/etc", 0755);
	const char *user = "sandbox";
	if (p->uid == 65534)
		snprintf(text, sizeof text,
			 "root:x:0:0:root:/root:/usr/sbin/nologin\n"
			 "%s:x:%u:%u:corral sandbox:/tmp:/usr/sbin/nologin\n",
			 user, p->uid, p->gid);
	else
		snprintf(text, sizeof text,
			 "root:x:0:0:root:/root:/usr/sbin/nologin\n"
			 "%s:x:%u:%u:corral sandbox:/tmp:/usr/sbin/nologin\n"
			 "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
			 user, p->uid, p->gid);
	write_file(ctl, "/etc/passwd", text);
	if (p->gid == 65534)
		snprintf(text, sizeof text, "root:x:0:\n%s:x:%u:\n", user, p->gid);
	else
		snprintf(text, sizeof text, "root:x:0:\n%s:x:%u:\nnogroup:x:65534:\n", user, p->gid);
	write_file(ctl, "/etc/group", text);
	write_file(ctl, "/etc/hosts", "127.0.0.1\tlocalhost corral\n::1\tlocalhost\n");
	write_file(ctl, "/etc/hostname", "corral\n");
	write_file(ctl, "/etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files\n");

	for (size_t i = 0; ETC_FILES[i]; i++) {
		snprintf(src, sizeof src, OLD "%s/etc/%s", p->sysroot, ETC_FILES[i]);
		snprintf(dest, sizeof dest, "/etc/%s", ETC_FILES[i]);
		mirror(ctl, src, dest, false);
	}
	/* every /etc/python3* entry; getdents64 on a stack buffer: nothing allocated here */
	snprintf(src, sizeof src, OLD "%s/etc", p->sysroot);
	int dfd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return;
	char ents[8192];
	long n;
	while ((n = syscall(SYS_getdents64, dfd, ents, sizeof ents)) > 0) {
		for (long off = 0; off < n;) {
			struct linux_dirent64 {
				uint64_t d_ino;
				int64_t d_off;
				unsigned short d_reclen;
				unsigned char d_type;
				char d_name[];
			} *e = (void *)(ents + off);
			off += e->d_reclen;
			if (strncmp(e->d_name, "python3", 7))
				continue;
			snprintf(src, sizeof src, OLD "%s/etc/%s", p->sysroot, e->d_name);
			snprintf(dest, sizeof dest, "/etc/%s", e->d_name);
			mirror(ctl, src, dest, false);
		}
	}
	close(dfd);
}

/* /dev is a directory of the new root (read-only with it at the end): its own tmpfs cost a
 * superblock to set up and, dearer, to take apart when the sandbox ends, for nothing -- what
 * it holds are the device bind mounts (nosuid, noexec each), links, and /dev/shm. */
static void build_dev(const struct sbx_plan *p, int ctl)
{
	char src[64], dest[64], opts[96];
	make_dir(ctl, "/dev", 0755);
	for (size_t i = 0; DEVICES[i]; i++) {
		snprintf(src, sizeof src, OLD "/dev/%s", DEVICES[i]);
		snprintf(dest, sizeof dest, "/dev/%s", DEVICES[i]);
		make_file(ctl, dest);
		if (mount(src, dest, NULL, MS_BIND, NULL) < 0)
			fail(ctl, "dev", src);
		if (set_attr(dest, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, false) < 0)
			fail(ctl, "dev", dest);
	}
	static const char *const links[][2] = {
		{"/proc/self/fd", "/dev/fd"},     {"/proc/self/fd/0", "/dev/stdin"},
		{"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"},
	};
	for (size_t i = 0; i < sizeof links / sizeof *links; i++)
		if (symlink(links[i][0], links[i][1]) < 0)
			fail(ctl, "dev", links[i][1]);
	make_dir(ctl, "/dev/shm", 01777);
	snprintf(opts, sizeof opts, "mode=1777,size=%llu", (unsigned long long)p->limits.tmp_bytes);
	if (mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) < 0)
		fail(ctl, "dev", "/dev/shm");
}

static void build_proc(int ctl)
{
	char path[64];
	make_dir(ctl, "/proc", 0555);
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		fail(ctl, "proc", "/proc");
	for (size_t i = 0; PROC_MASK_FILES[i]; i++) {
		snprintf(path, sizeof path, "/proc/%s", PROC_MASK_FILES[i]);
		if (access(path, F_OK) < 0)
			continue;
		if (mount(OLD "/dev/null", path, NULL, MS_BIND, NULL) < 0)
			fail(ctl, "proc-mask", path);
	}
	for (size_t i = 0; PROC_RO_DIRS[i]; i++) {
		snprintf(path, sizeof path, "/proc/%s", PROC_RO_DIRS[i]);
		if (access(path, F_OK) < 0)
			continue;
		if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0 ||
		    set_attr(path, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
					   MOUNT_ATTR_NOEXEC, true) < 0)
			fail(ctl, "proc-mask", path);
	}
}

static void build_tmp_and_output(const struct sbx_plan *p, int ctl)
{
	char opts[160];
	make_dir(ctl, "/tmp", 01777);
	snprintf(opts, sizeof opts, "mode=1777,size=%llu", (unsigned long long)p->limits.tmp_bytes);
	if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0)
		fail(ctl, "tmp", "/tmp");
	if (!p->want_output)
		return;
	make_dir(ctl, "/output", 0755);
	/* nr_inodes caps the number of files (and directories) as size caps the bytes. */
	snprintf(opts, sizeof opts, "mode=0755,size=%llu,nr_inodes=%u,uid=%u,gid=%u",
		 (unsigned long long)p->limits.outdir_bytes, p->limits.outdir_files * 2 + 64,
		 p->uid, p->gid);
	if (mount("tmpfs", "/output", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) < 0)
		fail(ctl, "output", "/output");
	int fd = open("/output", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		fail(ctl, "output", "/output");
	if (sbx_send_fd(ctl, SBX_MSG_OUTPUT_FD, fd) < 0)
		fail(ctl, "output", "send /output to supervisor");
	close(fd);
}

/* Engine sessions: a home directory that is the cell's cwd (E2B's /home/user), and /data for
 * uploads when no --data mount provides it.  Each is its own capped tmpfs. */
static void build_engine_dirs(const struct sbx_plan *p, int ctl)
{
	char opts[160];
	snprintf(opts, sizeof opts, "mode=0755,size=%llu,uid=%u,gid=%u",
		 (unsigned long long)p->limits.tmp_bytes, p->uid, p->gid);
	make_dir(ctl, "/home", 0755);
	make_dir(ctl, "/home/user", 0755);
	if (mount("tmpfs", "/home/user", "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0)
		fail(ctl, "home", "/home/user");
	for (uint32_t i = 0; i < p->n_mounts; i++)
		if (!strncmp(p->mounts[i].dest, "/data/", 6) || !strcmp(p->mounts[i].dest, "/data"))
			return; /* /data comes from the mounts */
	make_dir(ctl, "/data", 0755);
	if (mount("tmpfs", "/data", "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0)
		fail(ctl, "data", "/data");
}

/* User mounts: the mount point is created beneath our own tmpfs (/ or /tmp) with openat2 rules
 * that refuse to cross into any other mount, so nothing is ever created in a host directory. */
static void build_user_mounts(const struct sbx_plan *p, int ctl)
{
	char src[PATH_MAX + 16];
	for (uint32_t i = 0; i < p->n_mounts; i++) {
		const struct sbx_plan_mount *m = &p->mounts[i];
		const char *base = "/", *rel = m->dest + 1;
		if (!strncmp(m->dest, "/tmp/", 5)) {
			base = "/tmp";
			rel = m->dest + 5;
		}
		int basefd = open(base, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (basefd < 0)
			fail(ctl, "mount-point", base);
		struct cr_err e;
		char parent[SBX_PATH_MAX];
		snprintf(parent, sizeof parent, "%s", rel);
		char *slash = strrchr(parent, '/');
		int dirfd = basefd;
		if (m->is_dir) {
			dirfd = cr_mkdir_beneath(basefd, rel, 0755, &e);
		} else if (slash) {
			*slash = '\0';
			dirfd = cr_mkdir_beneath(basefd, parent, 0755, &e);
		}
		if (dirfd < 0) {
			errno = -dirfd;
			fail(ctl, "mount-point", m->dest);
		}
		if (!m->is_dir) {
			int fd = cr_open_beneath(dirfd == basefd ? basefd : dirfd,
						 slash ? slash + 1 : rel, O_WRONLY | O_CREAT, 0444, &e);
			if (fd < 0) {
				errno = -fd;
				fail(ctl, "mount-point", m->dest);
			}
			close(fd);
		}
		if (dirfd != basefd)
			close(dirfd);
		close(basefd);
		snprintf(src, sizeof src, OLD "%s", m->src);
		if (mount(src, m->dest, NULL, MS_BIND | MS_REC, NULL) < 0)
			fail(ctl, "bind", m->src);
		unsigned attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
		if (!m->writable)
			attrs |= MOUNT_ATTR_RDONLY;
		if (set_attr(m->dest, attrs, true) < 0)
			fail(ctl, "bind-flags", m->dest);
	}
}

void sbx_build_root(const struct sbx_plan *p, int ctl)
{
	/* Nothing we do from here on may propagate back to the host. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		fail(ctl, "mount-private", "/");
	/* Stage the new root on /tmp of our private view; after pivot_root the host's own /tmp is
	 * uncovered again at /oldroot/tmp, so --ro sources under /tmp stay reachable. */
	if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m") < 0)
		fail(ctl, "new-root", "tmpfs on /tmp");
	if (chdir("/tmp") < 0)
		fail(ctl, "new-root", "/tmp");
	make_dir(ctl, "oldroot", 0700);
	if (syscall(SYS_pivot_root, ".", "oldroot") < 0)
		fail(ctl, "pivot-root", "/tmp");
	if (chdir("/") < 0)
		fail(ctl, "pivot-root", "/");

	build_system(p, ctl);
	build_etc(p, ctl);
	build_dev(p, ctl);
	build_proc(ctl);
	build_tmp_and_output(p, ctl);
	if (p->engine_dirs)
		build_engine_dirs(p, ctl);
	build_user_mounts(p, ctl);

	if (umount2(OLD, MNT_DETACH) < 0)
		fail(ctl, "detach-oldroot", OLD);
	if (rmdir(OLD) < 0)
		fail(ctl, "detach-oldroot", OLD);
	if (set_attr("/", MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, false) < 0)
		fail(ctl, "root-readonly", "/");
	if (p->send_root) {
		int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0 || sbx_send_fd(ctl, SBX_MSG_ROOT_FD, fd) < 0)
			fail(ctl, "root-fd", "send / to supervisor");
		close(fd);
	}
	if (chdir(p->workdir) < 0)
		fail(ctl, "workdir", p->workdir);
}
