/* server/api_v1.c -- the native API, v1 (docs/API.md, docs/openapi.json).
 *
 * Handlers only map: HTTP in (already routed, authenticated and size-capped by http.c), parse
 * with api_json.c, act through the engine (ops.c, engine.h), JSON out.  A sandbox is visible
 * only to the key that created it; to any other key it does not exist (404, same message).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/srv_internal.h"

/* Resolves {id} for the caller's key; replies 404 itself when it fails. */
static bool lookup(struct srv_req *r, struct srv_sandbox *sb, enum MHD_Result *ret)
{
	char id[64];
	const char *raw = srv_param(r, "id");
	if (!raw || srv_decode(raw, id, sizeof id) < 0 || srv_ids_get(id, r->key, sb) < 0) {
		*ret = srv_reply_error(r, 404, "not_found", "no sandbox %s", r->sandbox);
		return false;
	}
	return true;
}

/* The engine no longer has it (expired, died): forget the id and say so. */
static enum MHD_Result gone(struct srv_req *r, const struct srv_sandbox *sb)
{
	srv_ids_remove(sb->id, r->key);
	return srv_reply_error(r, 404, "not_found", "no sandbox %s (it expired or ended)", sb->id);
}

static enum MHD_Result engine_failed(struct srv_req *r, const struct srv_sandbox *sb, int rc,
				     const struct cr_err *err)
{
	if (rc == -ENOENT && sb)
		return gone(r, sb);
	if (rc == -EBUSY && sb)
		return srv_reply_error(r, 409, "busy", "sandbox %s is running a cell", sb->id);
	return srv_reply_errno(r, rc, err);
}

/* File operations: ENOENT may be the file or the sandbox (the engine says both with ENOENT);
 * ask the engine about the sandbox before forgetting it. */
static enum MHD_Result file_failed(struct srv_req *r, const struct srv_sandbox *sb, int rc,
				   const struct cr_err *err)
{
	if (rc == -ENOENT) {
		struct cr_err e2 = {0};
		struct eng_session_info info;
		struct eng_client *cl = srv_engine_take(&e2);
		int ri = cl ? eng_client_info(cl, sb->session, &info, &e2) : -ECONNREFUSED;
		srv_engine_give(cl, ri == 0);
		if (ri == -ENOENT)
			return gone(r, sb);
		return srv_reply_errno(r, rc, err);
	}
	return engine_failed(r, sb, rc, err);
}

/* -- service ----------------------------------------------------------------------------- */

static enum MHD_Result healthz(struct srv_req *r)
{
	struct cr_err err = {0};
	struct eng_client *cl = srv_engine_take(&err);
	struct eng_stats st;
	int rc = cl ? eng_client_stats(cl, &st, &err) : -ECONNREFUSED;
	srv_engine_give(cl, rc == 0);
	if (rc < 0)
		return srv_reply_error(r, 503, "unavailable", "the engine is not answering");
	return srv_reply_json(r, 200, json_pack("{s:s, s:I, s:I}", "status", "ok", "sandboxes",
						(json_int_t)st.sessions_live, "warm",
						(json_int_t)st.pool_ready));
}

static enum MHD_Result metrics(struct srv_req *r)
{
	struct cr_err err = {0};
	struct eng_client *cl = srv_engine_take(&err);
	struct eng_stats st;
	int rc = cl ? eng_client_stats(cl, &st, &err) : -ECONNREFUSED;
	srv_engine_give(cl, rc == 0);
	struct cr_buf out;
	cr_buf_init(&out, 1u << 20);
	if (srv_metrics_render(&out, rc == 0 ? &st : NULL) < 0) {
		cr_buf_free(&out);
		return srv_reply_error(r, 500, "internal", "metrics do not fit");
	}
	enum MHD_Result ret = srv_reply_data(r, 200, "text/plain; version=0.0.4; charset=utf-8",
					     out.data ? out.data : "", out.len);
	cr_buf_free(&out);
	return ret;
}

/* -- sandboxes --------------------------------------------------------------------------- */

static enum MHD_Result reply_sandbox(struct srv_req *r, struct eng_client *cl,
				     const struct srv_sandbox *sb, unsigned status)
{
	struct cr_err err = {0};
	struct eng_session_info info;
	int rc = eng_client_info(cl, sb->session, &info, &err);
	srv_engine_give(cl, rc == 0);
	if (rc < 0)
		return engine_failed(r, sb, rc, &err);
	return srv_reply_json(r, status, srv_sandbox_json(sb->id, &info, sb->metadata));
}

static enum MHD_Result create(struct srv_req *r)
{
	struct cr_err err = {0};
	struct srv_create_req q;
	int rc = srv_parse_create(r->body.data, r->body.len, &q, &err);
	if (rc < 0)
		return srv_reply_errno(r, rc, &err);
	struct eng_req_create req;
	memset(&req, 0, sizeof req);
	req.mode = q.mode;
	req.limits = q.limits;
	req.limits.lifetime_s = q.timeout_s;
	memcpy(req.env, q.env, sizeof req.env);
	struct eng_client *cl = srv_engine_take(&err);
	struct eng_rsp_created created;
	rc = cl ? eng_client_create(cl, &req, NULL, &created, &err) : -(err.code ? err.code : EIO);
	if (rc < 0) {
		srv_engine_give(cl, false);
		srv_create_req_free(&q);
		if (rc == -EAGAIN)
			return srv_reply_error(r, 429, "capacity", "at capacity: no sandbox can be "
					       "created now; retry later");
		return srv_reply_errno(r, rc, &err);
	}
	struct srv_sandbox sb;
	rc = srv_ids_add(r->key, created.session, q.mode, q.metadata, "base", &sb, &err);
	srv_create_req_free(&q);
	if (rc < 0) {
		struct cr_err e2;
		eng_client_destroy(cl, created.session, &e2);
		srv_engine_give(cl, true);
		return srv_reply_error(r, 429, "capacity", "too many sandboxes; retry later");
	}
	snprintf(r->sandbox, sizeof r->sandbox, "%s", sb.id);
	enum MHD_Result ret = reply_sandbox(r, cl, &sb, 201);
	json_decref(sb.metadata);
	return ret;
}

static enum MHD_Result list(struct srv_req *r)
{
	struct cr_err err = {0};
	struct srv_sandbox *mine = NULL;
	size_t n_mine = 0;
	if (srv_ids_list(r->key, &mine, &n_mine) < 0)
		return srv_reply_error(r, 503, "unavailable", "out of memory");
	struct eng_session_info *all = NULL;
	size_t n_all = 0;
	int rc = 0;
	if (n_mine) {
		struct eng_client *cl = srv_engine_take(&err);
		rc = cl ? eng_client_list_sessions(cl, &all, &n_all, &err) : -ECONNREFUSED;
		srv_engine_give(cl, rc == 0);
	}
	if (rc < 0) {
		srv_ids_release(mine, n_mine);
		return srv_reply_errno(r, rc, &err);
	}
	json_t *arr = json_array();
	for (size_t i = 0; arr && i < n_mine; i++)
		for (size_t k = 0; k < n_all; k++)
			if (all[k].session == mine[i].session)
				json_array_append_new(arr, srv_sandbox_json(mine[i].id, &all[k],
									     mine[i].metadata));
	free(all);
	srv_ids_release(mine, n_mine);
	return srv_reply_json(r, 200, arr ? json_pack("{s:o}", "sandboxes", arr) : NULL);
}

static enum MHD_Result get_one(struct srv_req *r)
{
	struct srv_sandbox sb;
	enum MHD_Result ret;
	if (!lookup(r, &sb, &ret))
		return ret;
	struct cr_err err = {0};
	struct eng_client *cl = srv_engine_take(&err);
	ret = cl ? reply_sandbox(r, cl, &sb, 200) : srv_reply_errno(r, -ECONNREFUSED, &err);
	json_decref(sb.metadata);
	return ret;
}

static enum MHD_Result destroy(struct srv_req *r)
{
	struct srv_sandbox sb;
	enum MHD_Result ret;
	if (!lookup(r, &sb, &ret))
		return ret;
	json_decref(sb.metadata);
	struct cr_err err = {0};
	struct eng_client *cl = srv_engine_take(&err);
	int rc = cl ? eng_client_destroy(cl, sb.session, &err) : -ECONNREFUSED;
	srv_engine_give(cl, rc == 0);
	if (rc < 0)
		return engine_failed(r, &sb, rc, &err);
	srv_ids_remove(sb.id, r->key);
	return srv_reply_empty(r, 204);
}

static enum MHD_Result set_timeout(struct srv_req *r)
{
	struct cr_err err = {0};
	uint32_t t;
	int rc = srv_parse_timeout(r->body.data, r->body.len, &t, &err);
	if (rc < 0)
		return srv_reply_errno(r, rc, &err);
	struct srv_sandbox sb;
	enum MHD_Result ret;
	if (!lookup(r, &sb, &ret))
		return ret;
	struct eng_client *cl = srv_engine_take(&err);
	rc = cl ? eng_client_set_lifetime(cl, sb.session, t, &err) : -ECONNREFUSED;
	if (rc < 0) {
		srv_engine_give(cl, false);
		ret = engine_failed(r, &sb, rc, &err);
	} else {
		ret = reply_sandbox(r, cl, &sb, 200);
	}
	json_decref(sb.metadata);
	return ret;
}

/* -- execute ----------------------------------------------------------------------------- */

struct exec_stream {
	struct srv_exec x;
	struct srv_events ev;
	struct cr_buf line;
	size_t off;
	bool final_sent;
};

static void put_final(struct exec_stream *s, json_t *final)
{
	srv_events_flush(&s->ev, &s->line);
	char *f = final ? json_dumps(final, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
	json_decref(final);
	cr_buf_puts(&s->line, f ? f : "{\"type\":\"final\",\"status\":\"engine_error\"}");
	cr_buf_append(&s->line, "\n", 1);
	free(f);
	s->final_sent = true;
}

static ssize_t exec_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	struct exec_stream *s = cls;
	while (s->off == s->line.len) {
		if (s->final_sent)
			return MHD_CONTENT_READER_END_OF_STREAM;
		cr_buf_reset(&s->line);
		s->off = 0;
		struct cr_err err = {0};
		int rc = srv_exec_next(&s->x, &err);
		if (rc == 1) {
			srv_event_line(&s->ev, s->x.hdr.type, s->x.frame.data, s->x.frame.len,
				       &s->line);
			/* what already arrived goes out in the same chunk (fewer, fuller sends) */
			while (s->line.len < 32768 && srv_exec_ready(&s->x) &&
			       (rc = srv_exec_next(&s->x, &err)) == 1)
				srv_event_line(&s->ev, s->x.hdr.type, s->x.frame.data, s->x.frame.len,
					       &s->line);
			if (rc == 0 && s->x.done)
				put_final(s, srv_final_json(&s->x.fin));
			else if (rc < 0 && rc != -ECONNRESET)
				put_final(s, json_pack("{s:s, s:s, s:s}", "type", "final", "status",
						       "engine_error", "message", err.msg));
		} else if (rc == 0) {
			put_final(s, srv_final_json(&s->x.fin));
		} else if (rc == -ECONNRESET) {
			return MHD_CONTENT_READER_END_WITH_ERROR; /* the cell is interrupted at free */
		} else {
			/* always a final line: the engine failed under the cell */
			put_final(s, json_pack("{s:s, s:s, s:s}", "type", "final", "status",
					       "engine_error", "message", err.msg));
		}
	}
	size_t n = s->line.len - s->off;
	if (n > max)
		n = max;
	memcpy(buf, s->line.data + s->off, n);
	s->off += n;
	return (ssize_t)n;
}

static void exec_release(void *cls)
{
	struct exec_stream *s = cls;
	srv_exec_end(&s->x);
	cr_buf_free(&s->line);
	free(s);
	srv_metrics_stream(-1);
}

static bool wants_aggregate(const struct srv_req *r)
{
	const char *a = srv_header(r, MHD_HTTP_HEADER_ACCEPT);
	return a && strstr(a, "application/json") && !strstr(a, "ndjson");
}

static enum MHD_Result execute_aggregate(struct srv_req *r, struct srv_exec *x,
					 const struct srv_sandbox *sb)
{
	struct srv_agg agg;
	srv_agg_init(&agg);
	struct cr_err err = {0};
	int rc;
	while ((rc = srv_exec_next(x, &err)) == 1)
		srv_agg_add(&agg, x->hdr.type, x->frame.data, x->frame.len);
	enum MHD_Result ret;
	if (rc == 0)
		ret = srv_reply_json(r, 200, srv_agg_finish(&agg, &x->fin));
	else if (rc == -ECONNRESET)
		ret = MHD_NO; /* nobody to answer; closing our engine connection stops the cell */
	else
		ret = engine_failed(r, sb, rc, &err);
	srv_agg_free(&agg);
	srv_exec_end(x);
	return ret;
}

static enum MHD_Result execute(struct srv_req *r)
{
	struct cr_err err = {0};
	struct srv_exec_req q;
	int rc = srv_parse_execute(r->body.data, r->body.len, &q, &err);
	if (rc < 0)
		return srv_reply_errno(r, rc, &err);
	cr_buf_free(&r->body); /* the code is in q now */
	struct srv_sandbox sb;
	enum MHD_Result ret;
	if (!lookup(r, &sb, &ret)) {
		srv_exec_req_free(&q);
		return ret;
	}
	json_decref(sb.metadata);
	sb.metadata = NULL;
	struct exec_stream *s = calloc(1, sizeof *s);
	if (!s) {
		srv_exec_req_free(&q);
		return srv_reply_error(r, 503, "unavailable", "out of memory");
	}
	rc = srv_exec_start(&s->x, sb.session, &q, r->client_fd, &err);
	srv_exec_req_free(&q);
	if (rc < 0) {
		srv_exec_end(&s->x);
		free(s);
		return rc == -ECONNRESET ? MHD_NO : engine_failed(r, &sb, rc, &err);
	}
	if (wants_aggregate(r)) {
		ret = execute_aggregate(r, &s->x, &sb);
		free(s);
		return ret;
	}
	cr_buf_init(&s->line, 2 * SRV_EVENT_MAX);
	srv_metrics_stream(1);
	return srv_reply_stream(r, 200, "application/x-ndjson", MHD_SIZE_UNKNOWN, exec_read, s,
				exec_release);
}

/* -- files ------------------------------------------------------------------------------- */

/* {path*} -> the absolute session path; replies 400 itself when it is unusable. */
static bool file_path(struct srv_req *r, char *out, size_t n, enum MHD_Result *ret)
{
	char dec[ENG_PATH_MAX];
	struct cr_err err = {0};
	const char *raw = srv_param(r, "path");
	int rc = raw ? srv_decode(raw, dec, sizeof dec) : -EINVAL;
	if (rc == -ENAMETOOLONG)
		cr_failx(&err, ENAMETOOLONG, "the file path is too long");
	else if (rc < 0)
		cr_failx(&err, EINVAL, "the file path holds a NUL byte");
	else
		rc = srv_session_path(dec, out, n, &err);
	if (rc < 0) {
		*ret = srv_reply_error(r, 400, "invalid_path", "%s", err.msg);
		return false;
	}
	return true;
}

struct upload_state {
	struct srv_upload u;
	struct srv_sandbox sb;
	char path[ENG_PATH_MAX];
	bool begun;
};

static void upload_state_free(void *p)
{
	struct upload_state *s = p;
	if (s->begun)
		srv_upload_abort(&s->u);
	free(s);
}

static enum MHD_Result put_begin(struct srv_req *r)
{
	struct upload_state *s = calloc(1, sizeof *s);
	if (!s)
		return srv_reply_error(r, 503, "unavailable", "out of memory");
	r->state = s;
	r->state_free = upload_state_free;
	enum MHD_Result ret;
	if (!lookup(r, &s->sb, &ret))
		return ret;
	json_decref(s->sb.metadata);
	s->sb.metadata = NULL;
	if (!file_path(r, s->path, sizeof s->path, &ret))
		return ret;
	const char *cl = srv_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (!cl)
		return srv_reply_error(r, 411, "length_required",
				       "an upload needs a Content-Length header");
	char *end;
	errno = 0;
	unsigned long long size = strtoull(cl, &end, 10);
	uint64_t cap = srv_cfg()->max_upload_bytes;
	if (errno || *end || *cl == '-' || size > cap)
		return srv_reply_error(r, 413, "too_large", "uploads are limited to %llu bytes",
				       (unsigned long long)cap);
	struct cr_err err = {0};
	int rc = srv_upload_begin(&s->u, s->sb.session, s->path, size, &err);
	if (rc < 0)
		return srv_reply_errno(r, rc, &err);
	s->begun = true;
	return MHD_YES;
}

static void put_data(struct srv_req *r, const char *data, size_t len)
{
	struct upload_state *s = r->state;
	if (s && s->begun)
		srv_upload_data(&s->u, data, len);
}

static enum MHD_Result put_done(struct srv_req *r)
{
	struct upload_state *s = r->state;
	s->begun = false;
	int rc = srv_upload_end(&s->u);
	if (rc < 0)
		return file_failed(r, &s->sb, rc, &s->u.err);
	return srv_reply_json(r, 201, json_pack("{s:s, s:I}", "path", s->path, "size",
						(json_int_t)r->body_len));
}

struct download_state {
	struct srv_download d;
};

static ssize_t download_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	struct download_state *s = cls;
	ssize_t n = srv_download_read(&s->d, buf, max);
	if (n == 0)
		return MHD_CONTENT_READER_END_OF_STREAM;
	return n < 0 ? MHD_CONTENT_READER_END_WITH_ERROR : n;
}

static void download_release(void *cls)
{
	struct download_state *s = cls;
	srv_download_end(&s->d);
	free(s);
}

static enum MHD_Result get_file(struct srv_req *r)
{
	struct srv_sandbox sb;
	enum MHD_Result ret;
	if (!lookup(r, &sb, &ret))
		return ret;
	json_decref(sb.metadata);
	char path[ENG_PATH_MAX];
	if (!file_path(r, path, sizeof path, &ret))
		return ret;
	struct download_state *s = calloc(1, sizeof *s);
	if (!s)
		return srv_reply_error(r, 503, "unavailable", "out of memory");
	struct cr_err err = {0};
	int rc = srv_download_begin(&s->d, sb.session, path, r->client_fd, &err);
	if (rc < 0) {
		free(s);
		return file_failed(r, &sb, rc, &err);
	}
	if (s->d.size > srv_cfg()->max_download_bytes) {
		download_release(s);
		return srv_reply_error(r, 413, "too_large", "%s is larger than the %llu byte "
				       "download limit", path,
				       (unsigned long long)srv_cfg()->max_download_bytes);
	}
	return srv_reply_stream(r, 200, "application/octet-stream", s->d.size, download_read, s,
				download_release);
}

static enum MHD_Result delete_file(struct srv_req *r)
{
	struct srv_sandbox sb;
	enum MHD_Result ret;
	if (!lookup(r, &sb, &ret))
		return ret;
	json_decref(sb.metadata);
	char path[ENG_PATH_MAX];
	if (!file_path(r, path, sizeof path, &ret))
		return ret;
	struct cr_err err = {0};
	struct eng_client *cl = srv_engine_take(&err);
	int rc = cl ? eng_client_remove(cl, sb.session, path, &err) : -ECONNREFUSED;
	srv_engine_give(cl, rc == 0);
	if (rc < 0)
		return file_failed(r, &sb, rc, &err);
	return srv_reply_empty(r, 204);
}

static enum MHD_Result list_files(struct srv_req *r)
{
	struct srv_sandbox sb;
	enum MHD_Result ret;
	if (!lookup(r, &sb, &ret))
		return ret;
	json_decref(sb.metadata);
	const char *raw = srv_query(r, "dir");
	char dec[ENG_PATH_MAX], path[ENG_PATH_MAX];
	struct cr_err err = {0};
	int rc = 0;
	if (!raw || !*raw)
		snprintf(path, sizeof path, "/home/user");
	else if ((rc = srv_decode(raw, dec, sizeof dec)) < 0)
		cr_failx(&err, EINVAL, "'dir' is too long or holds a NUL byte");
	else if (!strcmp(dec, "/"))
		snprintf(path, sizeof path, "/");
	else if (dec[0] != '/')
		rc = cr_failx(&err, EINVAL, "'dir' must be an absolute path");
	else
		rc = srv_session_path(dec + 1, path, sizeof path, &err);
	if (rc < 0)
		return srv_reply_error(r, 400, "invalid_path", "%s", err.msg);
	struct eng_client *cl = srv_engine_take(&err);
	struct eng_dirent *ents = NULL;
	size_t n = 0;
	rc = cl ? eng_client_list(cl, sb.session, path, &ents, &n, &err) : -ECONNREFUSED;
	srv_engine_give(cl, rc == 0);
	if (rc < 0)
		return file_failed(r, &sb, rc, &err);
	static const char *const TYPES[] = {"other", "file", "dir", "symlink", "other"};
	json_t *arr = json_array();
	for (size_t i = 0; arr && i < n; i++) {
		char mt[32];
		srv_rfc3339(ents[i].mtime > 0 ? (uint64_t)ents[i].mtime * 1000 : 0, mt, sizeof mt);
		json_array_append_new(arr, json_pack("{s:s, s:s, s:I, s:s}", "name", ents[i].name,
						     "type", TYPES[ents[i].type < 5 ? ents[i].type : 0],
						     "size", (json_int_t)ents[i].size, "mtime", mt));
	}
	free(ents);
	return srv_reply_json(r, 200, arr ? json_pack("{s:s, s:o}", "path", path, "entries", arr)
					  : NULL);
}

/* The route table of the native API.  docs/openapi.json lists exactly these (a test compares
 * it with `corral serve --print-routes`). */
const struct srv_route srv_routes_v1[] = {
	{"GET", "/healthz", SRV_AUTH_NONE, SRV_BODY_NONE, .handle = healthz},
	{"GET", "/metrics", SRV_AUTH_BEARER, SRV_BODY_NONE, .handle = metrics},
	{"POST", "/v1/sandboxes", SRV_AUTH_BEARER, SRV_BODY_JSON, .handle = create},
	{"GET", "/v1/sandboxes", SRV_AUTH_BEARER, SRV_BODY_NONE, .handle = list},
	{"GET", "/v1/sandboxes/{id}", SRV_AUTH_BEARER, SRV_BODY_NONE, .handle = get_one},
	{"DELETE", "/v1/sandboxes/{id}", SRV_AUTH_BEARER, SRV_BODY_NONE, .handle = destroy},
	{"POST", "/v1/sandboxes/{id}/timeout", SRV_AUTH_BEARER, SRV_BODY_JSON,
	 .handle = set_timeout},
	{"POST", "/v1/sandboxes/{id}/execute", SRV_AUTH_BEARER, SRV_BODY_JSON, .handle = execute},
	{"GET", "/v1/sandboxes/{id}/files", SRV_AUTH_BEARER, SRV_BODY_NONE, .handle = list_files},
	{"PUT", "/v1/sandboxes/{id}/files/{path*}", SRV_AUTH_BEARER, SRV_BODY_RAW,
	 .begin = put_begin, .upload = put_data, .handle = put_done},
	{"GET", "/v1/sandboxes/{id}/files/{path*}", SRV_AUTH_BEARER, SRV_BODY_NONE,
	 .handle = get_file},
	{"DELETE", "/v1/sandboxes/{id}/files/{path*}", SRV_AUTH_BEARER, SRV_BODY_NONE,
	 .handle = delete_file},
	{0},
};
