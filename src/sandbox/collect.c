/* sandbox/collect.c -- bring /output home: host code reading a tree an attacker built.
 *
 * Rules: both sides are opened with openat2-style resolution (core/path.h): nothing is ever
 * followed out of the sandbox's tmpfs or out of the host directory.  Only regular files are
 * copied; everything else is listed with a reason.  Caps on count, total bytes and depth.
 * The tmpfs itself is already size- and inode-capped, so the caps here are a second line.
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
#include "sandbox/supervise.h"

#define MAX_DEPTH 16
#define MAX_LISTED 4096 /* entries (copied + skipped) we keep in the result */

struct collector {
	int host_fd;
	const struct sbx_limits *lim;
	struct sbx_result *res;
	uint32_t copied;
	size_t listed_cap;
};

static void add_entry(struct collector *c, const char *rel, uint64_t bytes, const char *skipped)
{
	struct sbx_result *res = c->res;
	if (res->n_files >= MAX_LISTED) {
		res->files_truncated = true;
		return;
	}
	if (res->n_files == c->listed_cap) {
		size_t ncap = c->listed_cap ? c->listed_cap * 2 : 16;
		struct sbx_file *nf = realloc(res->files, ncap * sizeof *nf);
		if (!nf)
			return;
		res->files = nf;
		c->listed_cap = ncap;
	}
	char *p = strdup(rel);
	if (!p)
		return;
	res->files[res->n_files++] = (struct sbx_file){p, bytes, skipped};
}

static const char *copy_file(struct collector *c, int src_dir, const char *name, const char *rel,
			     uint64_t *bytes_out)
{
	struct cr_err e;
	CR_AUTOCLOSE int in = cr_open_beneath(src_dir, name, O_RDONLY | O_NONBLOCK, 0, &e);
	if (in < 0)
		return "unreadable";
	struct stat st;
	if (fstat(in, &st) < 0 || !S_ISREG(st.st_mode))
		return "not a regular file";
	*bytes_out = (uint64_t)st.st_size;
	if (c->copied >= c->lim->outdir_files)
		return "file count cap";
	if (c->res->files_bytes + (uint64_t)st.st_size > c->lim->outdir_bytes)
		return "byte cap";

	/* Parent directories on the host side, created beneath the host dir only. */
	CR_AUTOCLOSE int dst_dir = -1;
	const char *slash = strrchr(rel, '/');
	if (slash) {
		char parent[1024];
		snprintf(parent, sizeof parent, "%.*s", (int)(slash - rel), rel);
		dst_dir = cr_mkdir_beneath(c->host_fd, parent, 0755, &e);
		if (dst_dir < 0)
			return "host directory refused";
	}
	CR_AUTOCLOSE int out = cr_open_beneath(dst_dir >= 0 ? dst_dir : c->host_fd,
					       slash ? slash + 1 : rel,
					       O_WRONLY | O_CREAT | O_TRUNC, 0644, &e);
	if (out < 0)
		return "host file refused";
	char buf[65536];
	uint64_t left = (uint64_t)st.st_size, done = 0;
	while (left > 0) {
		ssize_t n = read(in, buf, left < sizeof buf ? left : sizeof buf);
		if (n <= 0)
			break;
		if (write(out, buf, (size_t)n) != n)
			return "host write failed";
		left -= (uint64_t)n;
		done += (uint64_t)n;
	}
	*bytes_out = done;
	c->copied++;
	c->res->files_bytes += done;
	return NULL;
}

static void walk(struct collector *c, int dir_fd, const char *prefix, int depth)
{
	int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	struct dirent *ent;
	while ((ent = readdir(d))) {
		if (!strcmp(ent->d_name, ".") || !strcmp(ent->d_name, ".."))
			continue;
		char rel[1024];
		if (snprintf(rel, sizeof rel, "%s%s%s", prefix, *prefix ? "/" : "", ent->d_name) >=
		    (int)sizeof rel) {
			add_entry(c, ent->d_name, 0, "path too long");
			continue;
		}
		struct stat st;
		if (fstatat(dir_fd, ent->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (depth >= MAX_DEPTH) {
				add_entry(c, rel, 0, "too deep");
				continue;
			}
			struct cr_err e;
			int sub = cr_open_beneath(dir_fd, ent->d_name, O_PATH | O_DIRECTORY, 0, &e);
			if (sub >= 0) {
				walk(c, sub, rel, depth + 1);
				close(sub);
			}
			continue;
		}
		if (S_ISLNK(st.st_mode)) {
			add_entry(c, rel, 0, "symlink");
			continue;
		}
		if (!S_ISREG(st.st_mode)) {
			add_entry(c, rel, 0, "not a regular file");
			continue;
		}
		uint64_t bytes = 0;
		const char *why = copy_file(c, dir_fd, ent->d_name, rel, &bytes);
		if (why && (!strcmp(why, "file count cap") || !strcmp(why, "byte cap")))
			c->res->files_truncated = true;
		add_entry(c, rel, bytes, why);
	}
	closedir(d);
}

void sbx_collect_output(int outfd, const char *host_dir, const struct sbx_limits *lim,
			struct sbx_result *res)
{
	struct collector c = {.lim = lim, .res = res};
	c.host_fd = open(host_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (c.host_fd < 0) {
		add_entry(&c, ".", 0, "host output directory unavailable");
		return;
	}
	walk(&c, outfd, "", 0);
	close(c.host_fd);
}
