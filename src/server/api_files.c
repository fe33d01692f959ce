/* server/api_files.c -- E2B's file transfer (envd's REST /files) over the sandbox's corral
 * session: GET streams a file out; POST takes one file as the raw body or files as
 * multipart/form-data (parsed by libmicrohttpd's post processor), each streamed into the
 * session without being held whole, capped by --max-upload.  Paths are the session's own
 * (e2b_session_path); the engine resolves them with openat2 beneath the session's trees. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/e2b_json.h"
#include "server/srv_internal.h"

/* -- REST /files ------------------------------------------------------------------------- */

static bool query_path(struct srv_req *r, char *out, size_t n, enum MHD_Result *ret)
{
	char p[ENG_PATH_MAX];
	struct cr_err err = {0};
	int rc = srv_query_decoded(r, "path", p, sizeof p);
	if (rc == -ENOENT || (rc == 0 && !p[0])) {
		*ret = srv_reply_error(r, 400, "invalid_argument", "'path' is required");
		return false;
	}
	if (rc < 0) {
		*ret = srv_reply_error(r, 400, "invalid_argument", "'path' is too long or holds a "
				       "NUL byte");
		return false;
	}
	if (e2b_session_path(p, out, n, &err) < 0) {
		*ret = srv_reply_error(r, 400, "invalid_argument", "%s", err.msg);
		return false;
	}
	return true;
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

static enum MHD_Result files_get(struct srv_req *r)
{
	char path[ENG_PATH_MAX];
	enum MHD_Result ret;
	if (!srv_envd_user_ok(r, &ret) || !query_path(r, path, sizeof path, &ret))
		return ret;
	struct download_state *s = calloc(1, sizeof *s);
	if (!s)
		return srv_reply_error(r, 503, "unavailable", "out of memory");
	struct cr_err err = {0};
	int rc = srv_download_begin(&s->d, r->sb.session, path, r->client_fd, &err);
	if (rc < 0) {
		free(s);
		return srv_envd_failed(r, rc, &err);
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

/* POST /files: one file as the raw body, or files as multipart/form-data parts named "file"
 * (each part's file name is its path when the query has none), parsed by libmicrohttpd. */
struct upload_state {
	struct srv_req *r;
	struct MHD_PostProcessor *pp;
	char query_path[ENG_PATH_MAX];
	bool have_query_path;
	struct srv_upload u;
	bool open;                 /* u is in progress */
	char path[ENG_PATH_MAX];   /* of the open upload */
	char part[ENG_PATH_MAX];   /* the open part's file name, as sent */
	uint64_t part_bytes;
	int error;
	struct cr_err err;
	json_t *written;           /* [{path, name, type}] */
};

static void upload_close(struct upload_state *s)
{
	if (!s->open)
		return;
	s->open = false;
	int rc = srv_upload_end(&s->u);
	if (rc < 0 && !s->error) {
		s->error = rc;
		s->err = s->u.err;
		return;
	}
	if (rc == 0) {
		const char *name = strrchr(s->path, '/');
		json_array_append_new(s->written, json_pack("{s:s, s:s, s:s}", "path", s->path, "name",
							     name ? name + 1 : s->path, "type", "file"));
	}
}

static void upload_open(struct upload_state *s, const char *path, uint64_t size)
{
	if (s->error)
		return;
	snprintf(s->path, sizeof s->path, "%s", path);
	int rc = srv_upload_begin(&s->u, s->r->sb.session, path, size, &s->err);
	if (rc < 0)
		s->error = rc;
	else
		s->open = true;
}

static enum MHD_Result on_part(void *cls, enum MHD_ValueKind kind, const char *key,
			       const char *filename, const char *content_type,
			       const char *transfer_encoding, const char *data, uint64_t off,
			       size_t size)
{
	(void)kind;
	(void)content_type;
	(void)transfer_encoding;
	struct upload_state *s = cls;
	if (!key || strcmp(key, "file") || s->error)
		return MHD_YES; /* other fields are not files */
	/* libmicrohttpd may announce a part before its first bytes: a new part is a new name,
	 * or offset 0 again after bytes of the open one */
	bool fresh = off == 0 && (!s->open || s->part_bytes > 0 ||
				  strcmp(filename ? filename : "", s->part));
	if (fresh) {
		upload_close(s);
		snprintf(s->part, sizeof s->part, "%s", filename ? filename : "");
		s->part_bytes = 0;
		char path[ENG_PATH_MAX];
		struct cr_err err = {0};
		if (s->have_query_path)
			snprintf(path, sizeof path, "%s", s->query_path);
		else if (!filename || e2b_session_path(filename, path, sizeof path, &err) < 0) {
			s->error = cr_failx(&s->err, EINVAL, "a file part needs a path: %s",
					    filename ? err.msg : "it has no file name");
			return MHD_YES;
		}
		upload_open(s, path, ENG_SIZE_STREAM);
	}
	if (s->open && size) {
		srv_upload_data(&s->u, data, size);
		s->part_bytes += size;
	}
	if (s->open && s->u.error && !s->error) {
		s->error = s->u.error;
		s->err = s->u.err;
	}
	return MHD_YES;
}

static void upload_state_free(void *p)
{
	struct upload_state *s = p;
	if (s->pp)
		MHD_destroy_post_processor(s->pp);
	if (s->open)
		srv_upload_abort(&s->u);
	json_decref(s->written);
	free(s);
}

static enum MHD_Result files_post_begin(struct srv_req *r)
{
	enum MHD_Result ret;
	if (!srv_envd_user_ok(r, &ret))
		return ret;
	struct upload_state *s = calloc(1, sizeof *s);
	if (!s || !(s->written = json_array())) {
		free(s);
		return srv_reply_error(r, 503, "unavailable", "out of memory");
	}
	s->r = r;
	r->state = s;
	r->state_free = upload_state_free;
	const char *enc = srv_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING);
	if (enc && strcasecmp(enc, "identity"))
		return srv_reply_error(r, 415, "unsupported_encoding", "compressed uploads (%.20s) "
				       "are not supported", enc);
	if (srv_query(r, "path")) {
		if (!query_path(r, s->query_path, sizeof s->query_path, &ret))
			return ret;
		s->have_query_path = true;
	}
	const char *ct = srv_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
	if (ct && !strncasecmp(ct, "multipart/form-data", 19)) {
		s->pp = MHD_create_post_processor(r->conn, 64 * 1024, on_part, s);
		if (!s->pp)
			return srv_reply_error(r, 400, "invalid_argument", "a multipart body without "
					       "a boundary");
		return MHD_YES;
	}
	if (!s->have_query_path)
		return srv_reply_error(r, 400, "invalid_argument", "'path' is required");
	const char *cl = srv_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
	uint64_t size = ENG_SIZE_STREAM, cap = srv_cfg()->max_upload_bytes;
	if (cl) {
		char *end;
		errno = 0;
		unsigned long long v = strtoull(cl, &end, 10);
		if (errno || *end || *cl == '-' || v > cap)
			return srv_reply_error(r, 413, "too_large", "uploads are limited to %llu bytes",
					       (unsigned long long)cap);
		size = v;
	}
	upload_open(s, s->query_path, size);
	if (s->error)
		return srv_envd_failed(r, s->error, &s->err);
	return MHD_YES;
}

static void files_post_data(struct srv_req *r, const char *data, size_t len)
{
	struct upload_state *s = r->state;
	if (!s || s->error)
		return;
	if (r->body_len > srv_cfg()->max_upload_bytes * 2 + (1u << 20)) {
		s->error = cr_failx(&s->err, EFBIG, "uploads are limited to %llu bytes",
				    (unsigned long long)srv_cfg()->max_upload_bytes);
		return;
	}
	if (s->pp) {
		if (MHD_post_process(s->pp, data, len) != MHD_YES && !s->error)
			s->error = cr_failx(&s->err, EINVAL, "the multipart body is malformed");
	} else if (s->open) {
		srv_upload_data(&s->u, data, len);
		if (s->u.error) {
			s->error = s->u.error;
			s->err = s->u.err;
		}
	}
}

static enum MHD_Result files_post(struct srv_req *r)
{
	struct upload_state *s = r->state;
	if (s->pp) {
		MHD_destroy_post_processor(s->pp); /* flushes the last part */
		s->pp = NULL;
	}
	if (s->error) {
		if (s->open)
			srv_upload_abort(&s->u);
		s->open = false;
		return s->error == -ENOSPC || s->error == -EFBIG
			       ? srv_reply_error(r, s->error == -ENOSPC ? 507 : 413, "too_large",
						 "%s", s->err.msg)
			       : srv_envd_failed(r, s->error, &s->err);
	}
	upload_close(s);
	if (s->error)
		return s->error == -ENOSPC ? srv_reply_error(r, 507, "insufficient_storage", "%s",
							     s->err.msg)
					   : srv_envd_failed(r, s->error, &s->err);
	if (!json_array_size(s->written))
		return srv_reply_error(r, 400, "invalid_argument", "no file in the request (a "
				       "multipart body needs parts named 'file')");
	return srv_reply_json(r, 200, json_incref(s->written));
}

#define SBX SRV_AUTH_SANDBOX

const struct srv_route srv_routes_files[] = {
	{"GET", "/files", SBX, SRV_BODY_NONE, .handle = files_get, .dialect = SRV_E2B},
	{"POST", "/files", SBX, SRV_BODY_RAW, .begin = files_post_begin, .upload = files_post_data,
	 .handle = files_post, .dialect = SRV_E2B},
	{0},
};
