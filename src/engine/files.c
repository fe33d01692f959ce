/* engine/files.c -- file transfer into and out of a session: host code walking a tree the
 * sandboxed code controls.
 *
 * Every path is absolute inside the session and must start with one of the session's own
 * writable trees (/tmp, /data, /output, /home).  From there it is resolved with openat2
 * RESOLVE_BENEATH | NO_SYMLINKS | NO_MAGICLINKS | NO_XDEV (core/path.h): "..", absolute
 * escapes and symlinks planted by the session are refused with a clear error, never followed.
 * Files and directories we create are handed to the session's uid.  Sizes are capped.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/path.h"
#include "engine/manager_internal.h"
#include "sandbox/supervise.h"

#define FILE_MAX (1ULL << 30)   /* largest upload or download */
#define LIST_MAX 10000
#define REMOVE_DEPTH 32

/* The session's own writable trees (each a tmpfs or a --data mount), as seen inside. */
static const char *const ROOTS[] = {"home/user", "tmp", "data", "output", NULL};

/* Splits "/tmp/a/b.csv" into an O_PATH fd on the session's /tmp and "a/b.csv" (or "" for the
 * root itself).  Returns the fd or -errno with a message in err. */
static int open_root(struct session *s, const char *path, const char **rest, struct cr_err *err)
{
	if (s->root_fd < 0)
		return cr_failx(err, ENOENT, "the session's filesystem is not available");
	if (path[0] != '/')
		return cr_failx(err, EINVAL, "path '%s' must be absolute", path);
	const char *p = path + 1;
	int which = -1;
	size_t n = 0;
	for (int i = 0; ROOTS[i]; i++) {
		n = strlen(ROOTS[i]);
		if (!strncmp(p, ROOTS[i], n) && (p[n] == '\0' || p[n] == '/')) {
			which = i;
			break;
		}
	}
	if (which < 0)
		return cr_failx(err, EACCES, "path '%s' is outside /home/user, /tmp, /data and /output",
				path);
	*rest = p[n] == '/' ? p + n + 1 : "";
	if (**rest == '/' || (p[n] == '/' && !**rest))
		return cr_failx(err, EINVAL, "path '%s' has an empty component", path);
	/* our own directories and mount points: fixed before the session ran any code */
	int fd = openat(s->root_fd, ROOTS[which], O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return cr_fail(err, errno, "%s", path);
	if (**rest && cr_path_check_relative(*rest, err) < 0) {
		close(fd);
		return cr_failx(err, EINVAL, "path '%s': %s", path, err->msg);
	}
	return fd;
}

static void give_to_session(const struct session *s, int fd)
{
	if (geteuid() == 0)
		(void)!fchownat(fd, "", s->uid, s->uid, AT_EMPTY_PATH);
}

/* mkdir -p of rel beneath base, each new directory handed to the session. O_PATH fd or -errno. */
static int make_dirs(const struct session *s, int base, const char *rel, struct cr_err *err)
{
	CR_AUTOCLOSE int cur = fcntl(base, F_DUPFD_CLOEXEC, 0);
	if (cur < 0)
		return cr_fail(err, errno, "dup");
	char buf[ENG_PATH_MAX];
	snprintf(buf, sizeof buf, "%s", rel);
	char *save = NULL;
	for (char *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		bool made = mkdirat(cur, c, 0755) == 0;
		if (!made && errno != EEXIST)
			return cr_fail(err, errno, "mkdir %s", rel);
		int next = cr_open_beneath(cur, c, O_PATH | O_DIRECTORY, 0, err);
		if (next < 0)
			return next;
		if (made)
			give_to_session(s, next);
		close(cur);
		cur = next;
	}
	return cr_take_fd(&cur);
}

static void split_leaf(const char *rest, char *parent, size_t n, const char **leaf)
{
	const char *slash = strrchr(rest, '/');
	if (slash) {
		snprintf(parent, n, "%.*s", (int)(slash - rest), rest);
		*leaf = slash + 1;
	} else {
		parent[0] = '\0';
		*leaf = rest;
	}
}

void files_write_begin(struct client *c, struct session *s, const struct eng_req_file *req)
{
	struct cr_err err = {0};
	const char *rest;
	bool stream = req->size == ENG_SIZE_STREAM;
	if (!stream && req->size > FILE_MAX) {
		client_error(c, EFBIG, "upload of %llu bytes exceeds the %llu byte limit",
			     (unsigned long long)req->size, (unsigned long long)FILE_MAX);
		c->dead = true; /* the data frames that follow would be misread */
		return;
	}
	c->op = OP_FILE_WRITE;
	c->sess = s;
	c->file_left = stream ? FILE_MAX : req->size;
	c->file_stream = stream;
	c->file_fd = -1;
	CR_AUTOCLOSE int root = open_root(s, req->path, &rest, &err);
	int fd = -1;
	if (root >= 0 && !*rest)
		cr_failx(&err, EISDIR, "%s is a directory", req->path);
	else if (root >= 0) {
		char parent[ENG_PATH_MAX];
		const char *leaf;
		split_leaf(rest, parent, sizeof parent, &leaf);
		CR_AUTOCLOSE int dir = parent[0] ? make_dirs(s, root, parent, &err)
						 : fcntl(root, F_DUPFD_CLOEXEC, 0);
		if (dir >= 0) {
			fd = cr_open_beneath(dir, leaf, O_WRONLY | O_CREAT | O_TRUNC, 0644, &err);
			if (fd >= 0) {
				struct stat st;
				if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
					close(fd);
					fd = -1;
					cr_failx(&err, EINVAL, "%s is not a regular file", req->path);
				} else {
					give_to_session(s, fd);
				}
			}
		}
	}
	if (fd < 0) {
		client_error(c, err.code ? err.code : EINVAL, "%s", err.msg);
		c->file_fd = -2; /* failed: swallow the data frames that follow */
	} else {
		c->file_fd = fd;
	}
	if (c->file_left == 0 && !c->file_stream) {
		if (c->file_fd >= 0) {
			close(c->file_fd);
			client_ok(c, 0);
		}
		c->file_fd = -1;
		c->op = OP_NONE;
	}
}

void files_write_data(struct client *c, const char *data, size_t len)
{
	if (c->file_stream && len == 0) { /* the end of a streamed upload */
		c->file_left = 0;
		c->file_stream = false;
	} else if (c->file_stream && len > c->file_left) {
		if (c->file_fd >= 0) {
			client_error(c, EFBIG, "upload exceeds the %llu byte limit",
				     (unsigned long long)FILE_MAX);
			close(c->file_fd);
			c->file_fd = -2; /* swallow the rest, up to the empty frame */
		}
		return;
	} else if (len > c->file_left) {
		client_error(c, EPROTO, "more file data than announced");
		c->dead = true;
		return;
	}
	c->file_left -= len;
	if (c->file_fd >= 0) {
		size_t off = 0;
		while (off < len) {
			ssize_t n = write(c->file_fd, data + off, len - off);
			if (n < 0) {
				int e = errno;
				client_error(c, e, "writing the file: %s", strerror(e));
				close(c->file_fd);
				c->file_fd = -2;
				break;
			}
			off += (size_t)n;
		}
	}
	if (c->file_left == 0 && !c->file_stream) {
		if (c->file_fd >= 0) {
			close(c->file_fd);
			client_ok(c, 0);
		}
		c->file_fd = -1;
		c->op = OP_NONE;
		c->sess = NULL;
	}
}

void files_read_begin(struct client *c, struct session *s, const struct eng_req_file *req)
{
	struct cr_err err = {0};
	const char *rest;
	CR_AUTOCLOSE int root = open_root(s, req->path, &rest, &err);
	if (root < 0) {
		client_error(c, err.code, "%s", err.msg);
		return;
	}
	if (!*rest) {
		client_error(c, EISDIR, "%s is a directory", req->path);
		return;
	}
	int fd = cr_open_beneath(root, rest, O_RDONLY | O_NONBLOCK, 0, &err);
	if (fd < 0) {
		client_error(c, err.code, "%s", err.msg);
		return;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		client_error(c, S_ISDIR(st.st_mode) ? EISDIR : EINVAL, "%s is not a regular file",
			     req->path);
		return;
	}
	if ((uint64_t)st.st_size > FILE_MAX) {
		close(fd);
		client_error(c, EFBIG, "%s is larger than %llu bytes", req->path,
			     (unsigned long long)FILE_MAX);
		return;
	}
	struct eng_rsp_file_info info = {.size = (uint64_t)st.st_size};
	client_send(c, ENG_RSP_FILE_INFO, &info, sizeof info);
	c->op = OP_FILE_READ;
	c->sess = s;
	c->file_fd = fd;
	c->file_left = (uint64_t)st.st_size;
	files_read_pump(c);
}

void files_read_pump(struct client *c)
{
	char buf[ENG_FILE_CHUNK];
	bool failed = false;
	while (!c->dead && c->file_left > 0 && !client_backlogged(c)) {
		size_t want = c->file_left < sizeof buf ? (size_t)c->file_left : sizeof buf;
		ssize_t n = read(c->file_fd, buf, want);
		if (n <= 0) {
			client_error(c, n < 0 ? errno : EIO, "the file changed while it was read");
			c->file_left = 0;
			failed = true;
			break;
		}
		client_send(c, ENG_RSP_DATA, buf, (size_t)n);
		c->file_left -= (uint64_t)n;
	}
	if (c->file_left == 0) {
		if (!failed)
			client_ok(c, 0); /* also for an empty file, which sends no data at all */
		close(c->file_fd);
		c->file_fd = -1;
		c->op = OP_NONE;
		c->sess = NULL;
	}
}

static void send_entry(struct client *c, uint32_t type, uint64_t size, int64_t mtime,
		       const char *name, size_t nlen)
{
	struct eng_rsp_entry e = {.type = type, .size = size, .mtime = mtime};
	client_send2(c, ENG_RSP_ENTRY, &e, sizeof e, name, nlen);
}

static uint32_t type_of(mode_t m)
{
	return S_ISREG(m) ? 1 : S_ISDIR(m) ? 2 : S_ISLNK(m) ? 3 : 4;
}

void files_list(struct client *c, struct session *s, const struct eng_req_file *req)
{
	struct cr_err err = {0};
	if (!strcmp(req->path, "/")) {
		uint64_t n = 0;
		for (int i = 0; ROOTS[i]; i++) {
			struct stat st;
			if (s->root_fd >= 0 && fstatat(s->root_fd, ROOTS[i], &st, AT_SYMLINK_NOFOLLOW) == 0) {
				char name[32];
				int l = snprintf(name, sizeof name, "/%s", ROOTS[i]);
				send_entry(c, 2, 0, st.st_mtime, name, (size_t)l);
				n++;
			}
		}
		client_ok(c, n);
		return;
	}
	const char *rest;
	CR_AUTOCLOSE int root = open_root(s, req->path, &rest, &err);
	if (root < 0) {
		client_error(c, err.code, "%s", err.msg);
		return;
	}
	int fd = *rest ? cr_open_beneath(root, rest, O_RDONLY | O_DIRECTORY, 0, &err)
		       : openat(root, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		client_error(c, err.code ? err.code : errno, "%s", err.msg[0] ? err.msg : req->path);
		return;
	}
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		client_error(c, errno, "%s: not a directory", req->path);
		return;
	}
	uint64_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < LIST_MAX) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		struct stat st;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		send_entry(c, type_of(st.st_mode), S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0,
			   st.st_mtime, e->d_name, strlen(e->d_name));
		n++;
	}
	closedir(d);
	client_ok(c, n);
}

/* Removes name inside dirfd; directories recursively, never following a symlink. */
static int remove_at(int parent, const char *name, int depth)
{
	struct stat st;
	if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(parent, name, 0) < 0 ? -errno : 0;
	if (depth > REMOVE_DEPTH)
		return -ELOOP;
	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	int r = 0;
	struct dirent *e;
	while ((e = readdir(d)) && r == 0)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			r = remove_at(dirfd(d), e->d_name, depth + 1);
	closedir(d);
	if (r == 0 && unlinkat(parent, name, AT_REMOVEDIR) < 0)
		r = -errno;
	return r;
}

void files_remove(struct client *c, struct session *s, const struct eng_req_file *req)
{
	struct cr_err err = {0};
	const char *rest;
	CR_AUTOCLOSE int root = open_root(s, req->path, &rest, &err);
	if (root < 0) {
		client_error(c, err.code, "%s", err.msg);
		return;
	}
	if (!*rest) {
		client_error(c, EPERM, "%s cannot be removed", req->path);
		return;
	}
	char parent[ENG_PATH_MAX];
	const char *leaf;
	split_leaf(rest, parent, sizeof parent, &leaf);
	CR_AUTOCLOSE int dir = parent[0] ? cr_open_beneath(root, parent, O_PATH | O_DIRECTORY, 0, &err)
					 : fcntl(root, F_DUPFD_CLOEXEC, 0);
	if (dir < 0) {
		client_error(c, err.code ? err.code : errno, "%s", err.msg);
		return;
	}
	/* unlinkat/openat need a real directory fd, not O_PATH, for readdir; reopen it */
	CR_AUTOCLOSE int rd = openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = rd < 0 ? -errno : remove_at(rd, leaf, 0);
	if (r < 0)
		client_error(c, -r, "remove %s: %s", req->path, strerror(-r));
	else
		client_ok(c, 0);
}

void files_collect(struct client *c, struct session *s, const struct eng_req_collect *req)
{
	if (s->output_fd < 0) {
		client_error(c, ENOENT, "the session has no /output");
		return;
	}
	struct sbx_result res;
	memset(&res, 0, sizeof res);
	struct sbx_limits lim = sbx_limits_default;
	struct stat st;
	if (stat(req->host_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		client_error(c, ENOTDIR, "%s is not a directory", req->host_dir);
		return;
	}
	sbx_collect_output(s->output_fd, req->host_dir, &lim, &res);
	for (size_t i = 0; i < res.n_files; i++) {
		char name[ENG_PATH_MAX + 64];
		int n = snprintf(name, sizeof name, "%s%c%s", res.files[i].path, 0,
				 res.files[i].skipped ? res.files[i].skipped : "");
		send_entry(c, res.files[i].skipped ? 4 : 1, res.files[i].bytes, 0, name,
			   (size_t)n < sizeof name ? (size_t)n : sizeof name - 1);
		free(res.files[i].path);
	}
	free(res.files);
	client_ok(c, res.files_truncated ? 1 : 0);
}
