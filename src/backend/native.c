/* backend/native.c -- the backend on the local engine daemon (engine/engine.h).
 * Data files are bind-mounted read-only at /data/<basename> in a freshly spawned session. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/backend.h"
#include "engine/engine.h"
#include "sandbox/sandbox.h"

struct native {
	struct eng_client *cl;
	uint64_t session;
};

/* The daemon's socket and autostart live in the CLI (cli/engine_daemon.c); it is reached here
 * through this hook so the backend layer does not depend on the CLI. */
struct eng_client *(*bk_native_connect)(struct cr_err *err);

static int on_event(void *ctx, uint32_t type, const char *data, size_t len)
{
	struct bk_result *r = ctx;
	if (type == ENG_EV_STDOUT)
		cr_buf_append_trunc(&r->out, data, len);
	else if (type == ENG_EV_STDERR)
		cr_buf_append_trunc(&r->err, data, len);
	else if (type == ENG_EV_JSON)
		bk_result_add_event(r, data, len);
	return 0;
}

static int native_execute(struct bk *b, const char *code, uint32_t timeout_ms,
			  struct bk_result *r, struct cr_err *err)
{
	struct native *n = b->impl;
	struct eng_final f;
	int rc = eng_client_execute(n->cl, n->session, code, "default", timeout_ms, 0, on_event, r,
				    &f, err);
	if (rc < 0)
		return rc;
	static const enum bk_status map[] = {BK_OK, BK_ERROR, BK_TIMEOUT, BK_MEMORY_LIMIT, BK_KILLED};
	r->status = f.status <= ENG_F_KILLED ? map[f.status] : BK_KILLED;
	r->session_alive = f.session_alive != 0;
	r->duration_us = f.duration_us;
	r->cpu_us = f.cpu_us;
	r->peak_memory_bytes = f.peak_memory_bytes;
	return 0;
}

static int native_upload(struct bk *b, const char *path, const void *data, size_t len,
			 struct cr_err *err)
{
	struct native *n = b->impl;
	return eng_client_write_file(n->cl, n->session, path, data, len, err);
}

static int native_download(struct bk *b, const char *path, struct cr_buf *out, struct cr_err *err)
{
	struct native *n = b->impl;
	return eng_client_read_file(n->cl, n->session, path, out, err);
}

static void native_cleanup(struct bk *b)
{
	struct native *n = b->impl;
	struct cr_err err;
	eng_client_destroy(n->cl, n->session, &err);
	eng_client_close(n->cl);
	free(n);
	free(b);
}

static const struct bk_ops NATIVE_OPS = {native_execute, native_upload, native_download,
					 native_cleanup};

int bk_create_native(const struct bk_opts *o, struct bk **out, struct cr_err *err)
{
	if (!bk_native_connect)
		return cr_failx(err, ENOSYS, "no local engine in this program");
	struct eng_req_create req;
	memset(&req, 0, sizeof req);
	req.mode = o->mode == BK_STATELESS ? ENG_STATELESS : ENG_STATEFUL;
	req.flags = ENG_CREATE_EPHEMERAL;
	req.limits.memory_bytes = o->memory_bytes;
	req.limits.pids = o->pids;
	req.limits.cpus_milli = o->cpus_milli;
	req.limits.cell_timeout_ms = o->cell_timeout_ms;
	req.limits.lifetime_s = o->lifetime_s;
	if (o->allow_imports)
		snprintf(req.allow_imports, sizeof req.allow_imports, "%s", o->allow_imports);
	if (o->n_data_files > BK_MAX_DATA_FILES)
		return cr_failx(err, E2BIG, "too many data files");
	struct eng_mount mounts[BK_MAX_DATA_FILES];
	for (size_t i = 0; i < o->n_data_files; i++) {
		char real[PATH_MAX];
		if (o->data_fds[i] >= 0 && o->data_files[i][0] == '/')
			snprintf(real, sizeof real, "%s", o->data_files[i]); /* resolved by the caller */
		else if (!realpath(o->data_files[i], real))
			return cr_fail(err, errno, "%s", o->data_files[i]);
		memset(&mounts[i], 0, sizeof mounts[i]);
		snprintf(mounts[i].host, sizeof mounts[i].host, "%s", real);
		const char *name = o->data_names[i] ? o->data_names[i] : strrchr(real, '/') + 1;
		if (!*name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
			return cr_failx(err, EINVAL, "%s: not a usable file name under /data", name);
		snprintf(mounts[i].dest, sizeof mounts[i].dest, "/data/%s", name);
	}
	req.n_mounts = (uint32_t)o->n_data_files;
	struct native *n = calloc(1, sizeof *n);
	struct bk *b = calloc(1, sizeof *b);
	if (!n || !b) {
		free(n);
		free(b);
		return cr_fail(err, ENOMEM, "backend");
	}
	n->cl = bk_native_connect(err);
	if (!n->cl) {
		free(n);
		free(b);
		return -(err->code ? err->code : EIO);
	}
	struct eng_rsp_created created;
	int r = eng_client_create(n->cl, &req, req.n_mounts ? mounts : NULL, &created, err);
	if (r < 0) {
		eng_client_close(n->cl);
		free(n);
		free(b);
		return r;
	}
	n->session = created.session;
	b->ops = &NATIVE_OPS;
	b->impl = n;
	snprintf(b->describe, sizeof b->describe, "local engine (python %s)", created.python);
	*out = b;
	return 0;
}
