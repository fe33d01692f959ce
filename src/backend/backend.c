/* backend/backend.c -- the common half of every backend (see backend.h). */
#include "backend/backend.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void bk_opts_init(struct bk_opts *o)
{
	memset(o, 0, sizeof *o);
	for (size_t i = 0; i < BK_MAX_DATA_FILES; i++)
		o->data_fds[i] = -1;
}

const char *bk_status_name(enum bk_status s)
{
	switch (s) {
	case BK_OK: return "ok";
	case BK_ERROR: return "error";
	case BK_TIMEOUT: return "timeout";
	case BK_MEMORY_LIMIT: return "memory_limit";
	case BK_KILLED: return "killed";
	}
	return "killed";
}

void bk_result_init(struct bk_result *r)
{
	memset(r, 0, sizeof *r);
	cr_buf_init(&r->out, BK_STREAM_MAX);
	cr_buf_init(&r->err, BK_STREAM_MAX);
	r->events = json_array();
}

void bk_result_free(struct bk_result *r)
{
	cr_buf_free(&r->out);
	cr_buf_free(&r->err);
	json_decref(r->events);
	r->events = NULL;
}

int bk_result_add_event(struct bk_result *r, const char *json, size_t len)
{
	static __thread size_t total; /* bytes of events held by this result, approximately */
	if (json_array_size(r->events) == 0)
		total = 0;
	if (total + len > BK_EVENTS_MAX)
		return -E2BIG;
	json_error_t je;
	json_t *ev = json_loadb(json, len, 0, &je);
	if (!ev || !json_is_object(ev)) {
		json_decref(ev);
		return -EPROTO;
	}
	total += len;
	return json_array_append_new(r->events, ev) == 0 ? 0 : -ENOMEM;
}

int bk_execute(struct bk *b, const char *code, uint32_t timeout_ms, struct bk_result *r,
	       struct cr_err *err)
{
	return b->ops->execute(b, code, timeout_ms, r, err);
}

int bk_upload_file(struct bk *b, const char *remote_path, const void *data, size_t len,
		   struct cr_err *err)
{
	return b->ops->upload(b, remote_path, data, len, err);
}

int bk_download_file(struct bk *b, const char *remote_path, struct cr_buf *out,
		     struct cr_err *err)
{
	return b->ops->download(b, remote_path, out, err);
}

void bk_cleanup(struct bk *b)
{
	if (b)
		b->ops->cleanup(b);
}

const char *bk_describe(const struct bk *b)
{
	return b->describe;
}
