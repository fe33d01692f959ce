/* core/path.c -- see path.h. */
#include "core/path.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/cleanup.h"

static bool force_fallback;

void cr_path_force_fallback(bool on)
{
	force_fallback = on;
}

static long sys_openat2(int dirfd, const char *path, struct open_how *how)
{
	return syscall(SYS_openat2, dirfd, path, how, sizeof *how);
}

bool cr_have_openat2(void)
{
	struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_BENEATH};
	long fd = sys_openat2(AT_FDCWD, ".", &how);
	if (fd >= 0) {
		close((int)fd);
		return true;
	}
	return errno != ENOSYS;
}

int cr_path_check_relative(const char *rel, struct cr_err *err)
{
	if (!rel || !*rel)
		return cr_failx(err, EINVAL, "empty path");
	size_t n = strlen(rel);
	if (n > 1023)
		return cr_failx(err, ENAMETOOLONG, "path too long");
	if (rel[0] == '/')
		return cr_failx(err, EINVAL, "path '%s' must be relative", rel);
	const char *p = rel;
	while (*p) {
		const char *e = strchr(p, '/');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (l == 0)
			return cr_failx(err, EINVAL, "path '%s' has an empty component", rel);
		if ((l == 1 && p[0] == '.') || (l == 2 && p[0] == '.' && p[1] == '.'))
			return cr_failx(err, EINVAL, "path '%s' has a '.' or '..' component", rel);
		p += l;
		if (*p == '/')
			p++;
	}
	return 0;
}

/* Fallback: open each component with O_NOFOLLOW beneath the previous one, on one device. */
static int walk_open(int dirfd, const char *rel, int flags, mode_t mode, bool mkdirs,
		     struct cr_err *err)
{
	struct stat root_st;
	if (fstat(dirfd, &root_st) < 0)
		return cr_fail(err, errno, "fstat");
	char buf[1024];
	snprintf(buf, sizeof buf, "%s", rel);
	CR_AUTOCLOSE int cur = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
	if (cur < 0)
		return cr_fail(err, errno, "dup");
	char *save = NULL;
	char *comp = strtok_r(buf, "/", &save);
	while (comp) {
		char *next = strtok_r(NULL, "/", &save);
		int fd;
		if (next || mkdirs) {
			if (mkdirs && mkdirat(cur, comp, mode) < 0 && errno != EEXIST)
				return cr_fail(err, errno, "mkdir '%s'", rel);
			fd = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		} else {
			fd = openat(cur, comp, flags | O_NOFOLLOW | O_CLOEXEC, mode);
		}
		if (fd < 0) {
			int e = errno == ENOTDIR ? ELOOP : errno;
			return cr_fail(err, e, "open '%s'", rel);
		}
		struct stat st;
		if (fstat(fd, &st) < 0 || st.st_dev != root_st.st_dev) {
			close(fd);
			return cr_failx(err, EXDEV, "path '%s' crosses a mount", rel);
		}
		if (S_ISLNK(st.st_mode)) {
			close(fd);
			return cr_failx(err, ELOOP, "path '%s' is a symlink", rel);
		}
		close(cur);
		cur = fd;
		comp = next;
	}
	return cr_take_fd(&cur);
}

int cr_open_beneath(int dirfd, const char *rel, int flags, mode_t mode, struct cr_err *err)
{
	int r = cr_path_check_relative(rel, err);
	if (r < 0)
		return r;
	if (!force_fallback) {
		struct open_how how = {
			.flags = (unsigned)(flags | O_CLOEXEC | O_NOFOLLOW),
			.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0,
			.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
				   RESOLVE_NO_XDEV,
		};
		long fd = sys_openat2(dirfd, rel, &how);
		if (fd >= 0)
			return (int)fd;
		if (errno != ENOSYS)
			return cr_fail(err, errno, "open '%s'", rel);
	}
	return walk_open(dirfd, rel, flags, mode, false, err);
}

int cr_mkdir_beneath(int dirfd, const char *rel, mode_t mode, struct cr_err *err)
{
	int r = cr_path_check_relative(rel, err);
	if (r < 0)
		return r;
	if (force_fallback)
		return walk_open(dirfd, rel, 0, mode, true, err);
	/* Component by component, each step through openat2 so no step can escape. */
	char buf[1024];
	snprintf(buf, sizeof buf, "%s", rel);
	CR_AUTOCLOSE int cur = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
	if (cur < 0)
		return cr_fail(err, errno, "dup");
	char *save = NULL;
	for (char *comp = strtok_r(buf, "/", &save); comp; comp = strtok_r(NULL, "/", &save)) {
		if (mkdirat(cur, comp, mode) < 0 && errno != EEXIST)
			return cr_fail(err, errno, "mkdir '%s'", rel);
		struct open_how how = {
			.flags = O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW,
			.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
				   RESOLVE_NO_XDEV,
		};
		long fd = sys_openat2(cur, comp, &how);
		if (fd < 0) {
			if (errno == ENOSYS)
				return walk_open(dirfd, rel, 0, mode, true, err);
			return cr_fail(err, errno, "open '%s'", rel);
		}
		close(cur);
		cur = (int)fd;
	}
	return cr_take_fd(&cur);
}
