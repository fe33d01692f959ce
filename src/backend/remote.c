/* backend/remote.c -- the backend on a corral server: the native API v1 over libcurl.
 *
 * This is the C client of `corral serve` (docs/API.md) that the agent uses for
 * `--sandbox URL`.  create = POST /v1/sandboxes (then every data file is uploaded to
 * /data/<basename>), execute = POST .../execute read as NDJSON while it streams, upload = PUT,
 * download = GET, cleanup = DELETE.  Everything read from the server is bounded: JSON replies
 * (BODY_MAX), one NDJSON line (LINE_MAX), stdout/stderr and events (bk_result's caps), and
 * downloads (the caller's buffer).  A stalled server is detected by libcurl's low-speed limit:
 * a running cell sends a keepalive line at least every 5 s.  The API key goes only into the
 * Authorization header; messages name the URL without credentials.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/backend.h"
#include "core/cleanup.h"
#include "core/json.h"
#include "core/log.h"
#include "core/text.h"

#define BODY_MAX (1u << 20)        /* a JSON reply */
#define LINE_MAX_BYTES (40u << 20) /* one NDJSON line (a figure may be ~16 MiB of base64) */
#define DATA_FILE_MAX (1ULL << 30)
#define CONNECT_TIMEOUT_MS 10000L
#define REQUEST_TIMEOUT_MS 120000L
#define STALL_S 30L                /* no byte for this long: the server is gone */

struct remote {
	CURL *curl;
	char *base;          /* scheme://host[:port][/prefix], no trailing slash, no credentials */
	struct curl_slist *auth;
	char id[64];
	char errbuf[CURL_ERROR_SIZE];
};

/* -- HTTP helpers ------------------------------------------------------------------------ */

struct reply {
	long status;
	struct cr_buf body;
	char retry_after[16];
};

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
	struct reply *rp = ctx;
	cr_buf_append_trunc(&rp->body, p, size * n);
	return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *ctx)
{
	struct reply *rp = ctx;
	size_t len = size * n;
	if (len > 12 && !strncasecmp(p, "Retry-After:", 12)) {
		size_t k = 0;
		for (size_t i = 12; i < len && k < sizeof rp->retry_after - 1; i++)
			if (p[i] >= '0' && p[i] <= '9')
				rp->retry_after[k++] = p[i];
		rp->retry_after[k] = '\0';
	}
	return len;
}

/* Resets the handle for one request: method, URL, auth, timeouts. */
static int prepare(struct remote *rm, const char *method, const char *path, struct reply *rp,
		   struct cr_err *err)
{
	char url[4096];
	if (snprintf(url, sizeof url, "%s%s", rm->base, path) >= (int)sizeof url)
		return cr_failx(err, ENAMETOOLONG, "URL too long");
	CURL *c = rm->curl;
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, rm->auth);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, STALL_S);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, rm->errbuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, rp);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, rp);
	rm->errbuf[0] = '\0';
	return 0;
}

/* Maps a failed reply to -errno with the server's message (its error.message, quoted). */
static int http_fail(struct remote *rm, const char *what, CURLcode cc, const struct reply *rp,
		     struct cr_err *err)
{
	if (cc != CURLE_OK)
		return cr_failx(err, cc == CURLE_OPERATION_TIMEDOUT ? ETIMEDOUT : ECONNREFUSED,
				"%s: %s: %s", rm->base, what,
				rm->errbuf[0] ? rm->errbuf : curl_easy_strerror(cc));
	char msg[200] = "";
	json_t *j = rp->body.len ? json_loadb(rp->body.data, rp->body.len, 0, NULL) : NULL;
	const char *m = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
	if (m)
		cr_log_quote(msg, sizeof msg, m, strlen(m));
	json_decref(j);
	int e = rp->status == 400 ? EINVAL : rp->status == 401 ? EACCES : rp->status == 403 ? EPERM
	      : rp->status == 404 ? ENOENT : rp->status == 409 ? EBUSY
	      : (rp->status == 411 || rp->status == 413) ? EFBIG : rp->status == 429 ? EAGAIN : EIO;
	return cr_failx(err, e, "%s: %s: HTTP %ld %s", rm->base, what, rp->status, msg);
}

static int perform(struct remote *rm, const char *what, struct reply *rp, long ok,
		   struct cr_err *err)
{
	CURLcode cc = curl_easy_perform(rm->curl);
	curl_easy_getinfo(rm->curl, CURLINFO_RESPONSE_CODE, &rp->status);
	if (cc != CURLE_OK || rp->status != ok)
		return http_fail(rm, what, cc, rp, err);
	return 0;
}

/* "/data/a b.csv" -> "/data/a%20b.csv" (each component escaped; slashes kept). */
static int escape_path(CURL *c, const char *path, char *out, size_t n, struct cr_err *err)
{
	size_t o = 0;
	out[0] = '\0';
	const char *p = path;
	while (*p == '/')
		p++;
	while (*p) {
		size_t seg = strcspn(p, "/");
		char *e = curl_easy_escape(c, p, (int)seg);
		if (!e)
			return cr_fail(err, ENOMEM, "escaping %s", path);
		int w = snprintf(out + o, n - o, "/%s", e);
		curl_free(e);
		if (w < 0 || (size_t)w >= n - o)
			return cr_failx(err, ENAMETOOLONG, "path too long: %s", path);
		o += (size_t)w;
		p += seg;
		while (*p == '/')
			p++;
	}
	return o ? 0 : cr_failx(err, EINVAL, "empty path");
}

/* -- upload / download ------------------------------------------------------------------- */

struct source {
	const char *mem;
	int fd;         /* read with pread from off: a caller's descriptor keeps its offset */
	uint64_t off, left;
};

static size_t on_read(char *buf, size_t size, size_t n, void *ctx)
{
	struct source *s = ctx;
	size_t want = size * n;
	if (want > s->left)
		want = (size_t)s->left;
	if (s->mem) {
		memcpy(buf, s->mem, want);
		s->mem += want;
	} else {
		ssize_t r;
		do
			r = pread(s->fd, buf, want, (off_t)s->off);
		while (r < 0 && errno == EINTR);
		if (r < 0 || (r == 0 && want > 0))
			return CURL_READFUNC_ABORT; /* error, or the file shrank under us */
		want = (size_t)r;
		s->off += want;
	}
	s->left -= want;
	return want;
}

static int put_file(struct remote *rm, const char *path, struct source *src, uint64_t size,
		    struct cr_err *err)
{
	char esc[2048], url[2200];
	if (escape_path(rm->curl, path, esc, sizeof esc, err) < 0)
		return -err->code;
	snprintf(url, sizeof url, "/v1/sandboxes/%s/files%s", rm->id, esc);
	struct reply rp = {0};
	cr_buf_init(&rp.body, BODY_MAX);
	int r = prepare(rm, "PUT", url, &rp, err);
	if (r == 0) {
		curl_easy_setopt(rm->curl, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(rm->curl, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(rm->curl, CURLOPT_READDATA, src);
		curl_easy_setopt(rm->curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)size);
		r = perform(rm, "upload", &rp, 201, err);
	}
	cr_buf_free(&rp.body);
	return r;
}

static int remote_upload(struct bk *b, const char *path, const void *data, size_t len,
			 struct cr_err *err)
{
	struct source src = {.mem = data ? data : "", .fd = -1, .left = len};
	return put_file(b->impl, path, &src, len, err);
}

struct sink {
	struct cr_buf *out;
	bool too_big;
};

static size_t on_download(char *p, size_t size, size_t n, void *ctx)
{
	struct sink *s = ctx;
	if (cr_buf_append(s->out, p, size * n) < 0) {
		s->too_big = true;
		return 0; /* aborts the transfer */
	}
	return size * n;
}

static int remote_download(struct bk *b, const char *path, struct cr_buf *out,
			   struct cr_err *err)
{
	struct remote *rm = b->impl;
	char esc[2048], url[2200];
	if (escape_path(rm->curl, path, esc, sizeof esc, err) < 0)
		return -err->code;
	snprintf(url, sizeof url, "/v1/sandboxes/%s/files%s", rm->id, esc);
	struct reply rp = {0};
	cr_buf_init(&rp.body, BODY_MAX);
	struct sink s = {.out = out};
	size_t before = out->len;
	int r = prepare(rm, "GET", url, &rp, err);
	if (r == 0) {
		curl_easy_setopt(rm->curl, CURLOPT_WRITEFUNCTION, on_download);
		curl_easy_setopt(rm->curl, CURLOPT_WRITEDATA, &s);
		CURLcode cc = curl_easy_perform(rm->curl);
		curl_easy_getinfo(rm->curl, CURLINFO_RESPONSE_CODE, &rp.status);
		if (s.too_big)
			r = cr_failx(err, EFBIG, "%s is larger than %zu bytes", path, out->max);
		else if (cc != CURLE_OK || rp.status != 200) {
			/* the error body went into out: move it where http_fail looks */
			cr_buf_append_trunc(&rp.body, out->data ? out->data + before : "",
					    out->len - before);
			r = http_fail(rm, "download", cc, &rp, err);
		}
		if (r < 0)
			out->len = before;
	}
	cr_buf_free(&rp.body);
	return r;
}

/* -- execute ----------------------------------------------------------------------------- */

struct stream {
	struct bk_result *r;
	struct cr_buf line;
	bool final, too_long;
	long status;
	CURL *curl;
	struct cr_buf errbody; /* a non-200 reply's body */
};

static enum bk_status status_of(const char *s)
{
	static const char *const NAMES[] = {"ok", "error", "timeout", "memory_limit", "killed"};
	for (int i = 0; s && i < 5; i++)
		if (!strcmp(s, NAMES[i]))
			return (enum bk_status)i;
	return BK_KILLED;
}

static void take_text(struct cr_buf *dst, json_t *ev)
{
	const char *t = json_string_value(json_object_get(ev, "text"));
	if (!t)
		return;
	const char *enc = json_string_value(json_object_get(ev, "encoding"));
	size_t tl = json_string_length(json_object_get(ev, "text"));
	if (enc && !strcmp(enc, "base64")) {
		size_t n;
		void *raw = cr_base64_decode(t, tl, &n);
		if (raw)
			cr_buf_append_trunc(dst, raw, n);
		free(raw);
	} else {
		cr_buf_append_trunc(dst, t, tl);
	}
}

static void on_line(struct stream *s, const char *p, size_t n)
{
	json_t *ev = json_loadb(p, n, 0, NULL);
	const char *type = json_string_value(json_object_get(ev, "type"));
	if (!type) {
		json_decref(ev);
		return;
	}
	struct bk_result *r = s->r;
	if (!strcmp(type, "stdout")) {
		take_text(&r->out, ev);
	} else if (!strcmp(type, "stderr")) {
		take_text(&r->err, ev);
	} else if (!strcmp(type, "final")) {
		s->final = true;
		r->status = status_of(json_string_value(json_object_get(ev, "status")));
		r->session_alive = json_is_true(json_object_get(ev, "session_alive"));
		r->duration_us = (uint64_t)(json_number_value(json_object_get(ev, "duration_ms")) * 1000);
		r->cpu_us = (uint64_t)(json_number_value(json_object_get(ev, "cpu_ms")) * 1000);
		r->peak_memory_bytes =
			(uint64_t)json_integer_value(json_object_get(ev, "peak_memory_bytes"));
	} else if (strcmp(type, "keepalive")) {
		bk_result_add_event(r, p, n);
	}
	json_decref(ev);
}

static size_t on_stream(char *p, size_t size, size_t n, void *ctx)
{
	struct stream *s = ctx;
	size_t len = size * n;
	if (!s->status)
		curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &s->status);
	if (s->status != 200) {
		cr_buf_append_trunc(&s->errbody, p, len);
		return len;
	}
	for (size_t i = 0; i < len; i++) {
		if (p[i] != '\n') {
			if (!s->too_long && cr_buf_append(&s->line, p + i, 1) < 0)
				s->too_long = true; /* an over-long line is skipped, not fatal */
			continue;
		}
		if (!s->too_long && s->line.len)
			on_line(s, s->line.data, s->line.len);
		cr_buf_reset(&s->line);
		s->too_long = false;
	}
	return len;
}

static int remote_execute(struct bk *b, const char *code, uint32_t timeout_ms,
			  struct bk_result *r, struct cr_err *err)
{
	struct remote *rm = b->impl;
	json_t *req = json_pack("{s:s}", "code", code);
	if (req && timeout_ms)
		json_object_set_new(req, "timeout_s", json_real(timeout_ms / 1000.0));
	char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (!body)
		return cr_fail(err, ENOMEM, "execute");
	char path[128];
	snprintf(path, sizeof path, "/v1/sandboxes/%s/execute", rm->id);
	struct stream s = {.r = r, .curl = rm->curl};
	cr_buf_init(&s.line, LINE_MAX_BYTES);
	cr_buf_init(&s.errbody, BODY_MAX);
	struct reply rp = {0};
	cr_buf_init(&rp.body, BODY_MAX);
	struct curl_slist *h = NULL;
	for (struct curl_slist *a = rm->auth; a; a = a->next)
		h = curl_slist_append(h, a->data);
	h = curl_slist_append(h, "Content-Type: application/json");
	h = curl_slist_append(h, "Accept: application/x-ndjson");
	int rc = h ? prepare(rm, "POST", path, &rp, err) : cr_fail(err, ENOMEM, "headers");
	if (rc == 0) {
		curl_easy_setopt(rm->curl, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(rm->curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(rm->curl, CURLOPT_WRITEFUNCTION, on_stream);
		curl_easy_setopt(rm->curl, CURLOPT_WRITEDATA, &s);
		CURLcode cc = curl_easy_perform(rm->curl);
		curl_easy_getinfo(rm->curl, CURLINFO_RESPONSE_CODE, &rp.status);
		if (cc != CURLE_OK || rp.status != 200) {
			cr_buf_append_trunc(&rp.body, s.errbody.data ? s.errbody.data : "",
					    s.errbody.len);
			rc = http_fail(rm, "execute", cc, &rp, err);
		} else if (!s.final) {
			rc = cr_failx(err, EPROTO, "%s: the cell's stream ended without a final event",
				      rm->base);
		}
	}
	curl_slist_free_all(h);
	cr_buf_free(&s.line);
	cr_buf_free(&s.errbody);
	cr_buf_free(&rp.body);
	free(body);
	return rc;
}

/* -- lifecycle --------------------------------------------------------------------------- */

static void remote_free(struct remote *rm)
{
	if (!rm)
		return;
	if (rm->curl)
		curl_easy_cleanup(rm->curl);
	curl_slist_free_all(rm->auth);
	free(rm->base);
	free(rm);
}

static void remote_cleanup(struct bk *b)
{
	struct remote *rm = b->impl;
	if (rm->id[0]) {
		char path[128];
		snprintf(path, sizeof path, "/v1/sandboxes/%s", rm->id);
		struct reply rp = {0};
		cr_buf_init(&rp.body, BODY_MAX);
		struct cr_err err = {0};
		if (prepare(rm, "DELETE", path, &rp, &err) == 0) {
			curl_easy_setopt(rm->curl, CURLOPT_TIMEOUT_MS, REQUEST_TIMEOUT_MS);
			(void)perform(rm, "delete", &rp, 204, &err);
		}
		cr_buf_free(&rp.body);
	}
	remote_free(rm);
	free(b);
}

static const struct bk_ops REMOTE_OPS = {remote_execute, remote_upload, remote_download,
					 remote_cleanup};

/* base_url -> "scheme://host[:port][/prefix]" without credentials, query or trailing '/'. */
static int clean_base(const char *base_url, char **out, struct cr_err *err)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *s = NULL;
	int r = 0;
	if (!u)
		return cr_fail(err, ENOMEM, "URL");
	if (curl_url_set(u, CURLUPART_URL, base_url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    (strcasecmp(scheme, "http") && strcasecmp(scheme, "https")) ||
	    curl_url_set(u, CURLUPART_USER, NULL, 0) != CURLUE_OK ||
	    curl_url_set(u, CURLUPART_PASSWORD, NULL, 0) != CURLUE_OK ||
	    curl_url_set(u, CURLUPART_QUERY, NULL, 0) != CURLUE_OK ||
	    curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_URL, &s, 0) != CURLUE_OK) {
		r = cr_failx(err, EINVAL, "--sandbox: expected http(s)://HOST:PORT");
	} else {
		size_t n = strlen(s);
		while (n && s[n - 1] == '/')
			n--;
		*out = strndup(s, n);
		if (!*out)
			r = cr_fail(err, ENOMEM, "URL");
	}
	curl_free(scheme);
	curl_free(s);
	curl_url_cleanup(u);
	return r;
}

static int create_sandbox(struct remote *rm, const struct bk_opts *o, struct cr_err *err)
{
	json_t *limits = json_object();
	if (o->memory_bytes)
		json_object_set_new(limits, "memory", json_integer((json_int_t)o->memory_bytes));
	if (o->pids)
		json_object_set_new(limits, "pids", json_integer(o->pids));
	if (o->cpus_milli)
		json_object_set_new(limits, "cpus", json_real(o->cpus_milli / 1000.0));
	if (o->cell_timeout_ms)
		json_object_set_new(limits, "cell_timeout_s", json_real(o->cell_timeout_ms / 1000.0));
	json_t *req = json_pack("{s:s, s:o}", "mode", o->mode == BK_STATELESS ? "stateless"
									: "stateful", "limits", limits);
	if (req && o->lifetime_s)
		json_object_set_new(req, "timeout_s", json_integer(o->lifetime_s));
	char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (!body)
		return cr_fail(err, ENOMEM, "create");
	int r = -EAGAIN;
	/* at capacity (429) the server says when to come back: a few tries, never long */
	for (int attempt = 0; attempt < 4 && r == -EAGAIN; attempt++) {
		struct reply rp = {0};
		cr_buf_init(&rp.body, BODY_MAX);
		r = prepare(rm, "POST", "/v1/sandboxes", &rp, err);
		if (r == 0) {
			curl_easy_setopt(rm->curl, CURLOPT_POSTFIELDS, body);
			curl_easy_setopt(rm->curl, CURLOPT_TIMEOUT_MS, REQUEST_TIMEOUT_MS);
			r = perform(rm, "create a sandbox", &rp, 201, err);
		}
		if (r == 0) {
			json_t *j = json_loadb(rp.body.data ? rp.body.data : "", rp.body.len, 0, NULL);
			const char *id = json_string_value(json_object_get(j, "id"));
			if (!id || strlen(id) >= sizeof rm->id || strspn(id, "abcdefghijklmnopqrstuvwxyz"
					"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != strlen(id))
				r = cr_failx(err, EPROTO, "%s: the server sent no usable sandbox id",
					     rm->base);
			else
				snprintf(rm->id, sizeof rm->id, "%s", id);
			json_decref(j);
		} else if (r == -EAGAIN && attempt < 3) {
			long wait = rp.retry_after[0] ? atol(rp.retry_after) : 1;
			sleep((unsigned)(wait < 1 ? 1 : wait > 5 ? 5 : wait));
		}
		cr_buf_free(&rp.body);
	}
	free(body);
	return r;
}

static int upload_data_files(struct remote *rm, const struct bk_opts *o, struct cr_err *err)
{
	for (size_t i = 0; i < o->n_data_files; i++) {
		CR_AUTOCLOSE int own = -1;
		int fd = o->data_fds[i];
		if (fd < 0)
			fd = own = open(o->data_files[i], O_RDONLY | O_CLOEXEC);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0)
			return cr_fail(err, errno, "%s", o->data_files[i]);
		if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > DATA_FILE_MAX)
			return cr_failx(err, EINVAL, "%s: not a regular file of at most 1 GiB",
					o->data_files[i]);
		const char *base = o->data_names[i];
		if (!base) {
			base = strrchr(o->data_files[i], '/');
			base = base ? base + 1 : o->data_files[i];
		}
		if (!*base || strchr(base, '/') || !strcmp(base, ".") || !strcmp(base, ".."))
			return cr_failx(err, EINVAL, "%s: not a usable file name under /data", base);
		char dest[1100];
		snprintf(dest, sizeof dest, "/data/%s", base);
		struct source src = {.fd = fd, .off = 0, .left = (uint64_t)st.st_size};
		int r = put_file(rm, dest, &src, (uint64_t)st.st_size, err);
		if (r < 0)
			return r;
	}
	return 0;
}

int bk_remote_url_check(const char *base_url, struct cr_err *err)
{
	char *clean = NULL;
	if (!base_url || !*base_url)
		return cr_failx(err, EINVAL, "--sandbox: expected http(s)://HOST:PORT");
	int r = clean_base(base_url, &clean, err);
	free(clean);
	return r;
}

int bk_create_remote(const char *base_url, const char *api_key, const struct bk_opts *o,
		     struct bk **out, struct cr_err *err)
{
	if (!base_url || !api_key || !*api_key)
		return cr_failx(err, EINVAL, "a corral server needs a URL and an API key");
	if (strpbrk(api_key, "\r\n") || strlen(api_key) > 1024)
		return cr_failx(err, EINVAL, "the API key is malformed");
	if (o->n_data_files > BK_MAX_DATA_FILES)
		return cr_failx(err, E2BIG, "too many data files");
	struct remote *rm = calloc(1, sizeof *rm);
	struct bk *b = calloc(1, sizeof *b);
	int r = rm && b ? clean_base(base_url, &rm->base, err) : cr_fail(err, ENOMEM, "backend");
	if (r == 0 && !(rm->curl = curl_easy_init()))
		r = cr_fail(err, ENOMEM, "curl");
	if (r == 0) {
		size_t hl = strlen(api_key) + 32;
		char *h = malloc(hl);
		if (h) {
			snprintf(h, hl, "Authorization: Bearer %s", api_key);
			rm->auth = curl_slist_append(NULL, h);
			explicit_bzero(h, hl);
			free(h);
		}
		if (!rm->auth)
			r = cr_fail(err, ENOMEM, "headers");
	}
	if (r == 0)
		r = create_sandbox(rm, o, err);
	if (r == 0)
		r = upload_data_files(rm, o, err);
	if (r < 0) {
		if (rm && rm->id[0] && b) {
			b->impl = rm;
			remote_cleanup(b); /* deletes the half-made sandbox, frees both */
			return r;
		}
		remote_free(rm);
		free(b);
		return r;
	}
	b->ops = &REMOTE_OPS;
	b->impl = rm;
	snprintf(b->describe, sizeof b->describe, "%s", rm->base);
	*out = b;
	return 0;
}
