/* engine/stage.c -- read-only data files reach a session as copies, so that no host path
 * does.
 *
 * A bind mount shows its source: /proc/self/mountinfo in the sandbox names the host file's
 * path on its filesystem (the user's directories, a client's name, ...), which code written by
 * a model could read and report.  So a read-only *file* mount (what `corral exec --data` and
 * `corral analyze` ask for) is first copied by the manager into a private directory on
 * /dev/shm (root, 0700), named only after the session, and that copy is bind-mounted; once the
 * session is contained the copy is unlinked (the mount keeps it alive until the session
 * ends).  The copy is charged to the manager, not to the session's memory limit, and costs
 * one in-kernel copy (copy_file_range) on the cold path.  Directories and writable mounts are
 * bound as they are: those are explicit host openings (`corral run --ro/--rw`). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "engine/manager_internal.h"

#define STAGE_FILE_MAX (1ULL << 30)

/* Empties and removes a stage directory of ours (files only: we make no subdirectories). */
static void remove_dir(const char *dir)
{
	CR_AUTOCLOSEDIR DIR *d = opendir(dir);
	struct dirent *de;
	while (d && (de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			(void)unlinkat(dirfd(d), de->d_name, 0);
	(void)rmdir(dir);
}

/* /dev/shm/corral-stage-<pid>: made on first use; one left by a dead manager of the same pid
 * is ours to clear, anything else of that name (not a root-owned 0700 directory) is refused. */
static int stage_dir(struct mgr *m, struct cr_err *err)
{
	if (m->stage_dir[0])
		return 0;
	char dir[sizeof m->stage_dir];
	snprintf(dir, sizeof dir, "/dev/shm/corral-stage-%ld", (long)getpid());
	if (mkdir(dir, 0700) < 0) {
		struct stat st;
		if (errno != EEXIST)
			return cr_fail(err, errno, "%s", dir);
		if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
		    (st.st_mode & 077))
			return cr_failx(err, EEXIST, "%s exists and is not ours", dir);
		remove_dir(dir);
		if (mkdir(dir, 0700) < 0)
			return cr_fail(err, errno, "%s", dir);
	}
	snprintf(m->stage_dir, sizeof m->stage_dir, "%s", dir);
	return 0;
}

static int copy_all(int in, int out, uint64_t size, struct cr_err *err)
{
	uint64_t left = size;
	while (left) {
		ssize_t n = copy_file_range(in, NULL, out, NULL, left > (1u << 30) ? (1u << 30) : left,
					    0);
		if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL)) {
			char buf[65536];
			n = read(in, buf, sizeof buf);
			if (n > 0 && write(out, buf, (size_t)n) != n)
				return cr_fail(err, errno ? errno : EIO, "copying the data file");
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return cr_fail(err, errno, "copying the data file");
		if (n == 0)
			return cr_failx(err, EIO, "the data file shrank while it was copied");
		left -= (uint64_t)n;
	}
	return 0;
}

int stage_file(struct session *s, unsigned i, const char *host, const char **staged,
	       struct cr_err *err)
{
	struct stat st;
	*staged = host; /* a directory: bound as it is */
	if (stat(host, &st) < 0)
		return cr_fail(err, errno, "%s", host);
	if (!S_ISREG(st.st_mode))
		return 0;
	char out[sizeof s->m->stage_dir + 48];
	size_t n = sizeof out;
	if ((uint64_t)st.st_size > STAGE_FILE_MAX)
		return cr_failx(err, EFBIG, "%s: data files are limited to %llu bytes", host,
				(unsigned long long)STAGE_FILE_MAX);
	int r = stage_dir(s->m, err);
	if (r < 0)
		return r;
	if (snprintf(out, n, "%s/%llu.%u", s->m->stage_dir, (unsigned long long)s->id, i) >= (int)n)
		return cr_failx(err, ENAMETOOLONG, "stage path");
	CR_AUTOCLOSE int in = open(host, O_RDONLY | O_CLOEXEC);
	CR_AUTOCLOSE int fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0444);
	if (in < 0 || fd < 0)
		return cr_fail(err, errno, "%s", in < 0 ? host : out);
	char **v = realloc(s->staged, (s->n_staged + 1) * sizeof *v);
	if (!v || !(v[s->n_staged] = strdup(out))) {
		if (v)
			s->staged = v;
		(void)unlink(out);
		return cr_fail(err, ENOMEM, "stage");
	}
	s->staged = v;
	*staged = v[s->n_staged++];
	return copy_all(in, fd, (uint64_t)st.st_size, err);
}

void stage_release(struct session *s)
{
	for (size_t i = 0; i < s->n_staged; i++) {
		(void)unlink(s->staged[i]);
		free(s->staged[i]);
	}
	free(s->staged);
	s->staged = NULL;
	s->n_staged = 0;
}

void stage_cleanup(struct mgr *m)
{
	if (m->stage_dir[0])
		remove_dir(m->stage_dir);
	m->stage_dir[0] = '\0';
}
