/* server/http.c -- the request side of libmicrohttpd: the route table, authentication, body
 * caps, replies and request logs (daemon.c starts the daemon and watches connections).
 *
 * libmicrohttpd parses HTTP (we never do); it runs one thread per connection, so a handler may
 * block on the engine.  The access handler is called once with the request head (route, auth
 * and Content-Length checks happen there, before a body byte is read), then per body chunk,
 * then once more to reply.  URLs reach us still percent-encoded (identity unescape callback):
 * routes match on the raw path and parameters are decoded one by one, so "%2F" or "%00" can
 * never forge a segment or cut a string.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "server/e2b_json.h"
#include "server/srv_internal.h"

/* Route families: add a family's table here (and nothing else). */
static const struct {
	const char *name;
	const struct srv_route *routes;
} FAMILIES[] = {
	{"native", srv_routes_v1},     /* docs/openapi.json lists exactly these */
	{"e2b", srv_routes_e2b},       /* E2B's control plane */
	{"envd", srv_routes_envd},     /* E2B's in-sandbox daemon: processes, filesystem */
	{"envd", srv_routes_files},    /* ... and its file transfer */
	{"interpreter", srv_routes_interp},
	{NULL, NULL},
};

static const struct srv_route *routes[SRV_MAX_ROUTES];
static const char *route_family[SRV_MAX_ROUTES];
static unsigned n_routes;
static uint32_t id_prefix;
static _Atomic uint64_t id_seq;

static void flatten_routes(void)
{
	n_routes = 0;
	for (size_t f = 0; FAMILIES[f].name; f++)
		for (const struct srv_route *r = FAMILIES[f].routes; r->method; r++)
			if (n_routes < SRV_MAX_ROUTES) {
				route_family[n_routes] = FAMILIES[f].name;
				routes[n_routes++] = r;
			}
}

void srv_print_routes(FILE *f)
{
	flatten_routes();
	for (unsigned i = 0; i < n_routes; i++)
		fprintf(f, "%s %s %s\n", routes[i]->method, routes[i]->pattern, route_family[i]);
}

/* -- matching ---------------------------------------------------------------------------- */

/* Matches path against pattern; fills the parameters' (offset, length) pairs. */
static bool match(const char *pattern, const char *path, size_t off[], size_t len[],
		  const char *names[], size_t nlen[], size_t *n)
{
	*n = 0;
	const char *p = pattern, *u = path;
	while (*p && *u) {
		if (*p != '/' || *u != '/')
			return false;
		p++;
		u++;
		const char *pe = strchrnul(p, '/'), *ue = strchrnul(u, '/');
		if (*p == '{') {
			bool rest = pe - p >= 3 && pe[-2] == '*';
			if (*n >= SRV_MAX_PARAMS)
				return false;
			names[*n] = p + 1;
			nlen[*n] = (size_t)(pe - p) - (rest ? 3 : 2);
			off[*n] = (size_t)(u - path);
			if (rest) {
				len[*n] = strlen(u);
				(*n)++;
				return len[*n - 1] > 0 && !*pe;
			}
			len[*n] = (size_t)(ue - u);
			if (len[*n] == 0)
				return false;
			(*n)++;
		} else if (pe - p != ue - u || strncmp(p, u, (size_t)(pe - p))) {
			return false;
		}
		p = pe;
		u = ue;
	}
	return !*p && !*u;
}

static int route_request(struct srv_req *r, const char *url, char *allow, size_t allow_n)
{
	bool path_known = false;
	allow[0] = '\0';
	for (unsigned i = 0; i < n_routes; i++) {
		size_t off[SRV_MAX_PARAMS], len[SRV_MAX_PARAMS], nlen[SRV_MAX_PARAMS], n;
		const char *names[SRV_MAX_PARAMS];
		if (!match(routes[i]->pattern, url, off, len, names, nlen, &n))
			continue;
		path_known = true;
		if (strcmp(routes[i]->method, r->method)) {
			size_t l = strlen(allow);
			snprintf(allow + l, allow_n - l, "%s%s", l ? ", " : "", routes[i]->method);
			continue;
		}
		r->route = routes[i];
		r->route_idx = i;
		if (!(r->path = strdup(url)))
			return -ENOMEM;
		r->n_params = n;
		for (size_t k = 0; k < n; k++) {
			r->path[off[k] + len[k]] = '\0';
			r->pvals[k] = r->path + off[k];
			r->pnames[k] = names[k];
		}
		/* names point into the pattern, ended by '}' or '*': keep them comparable */
		for (size_t k = 0; k < n; k++)
			r->pnames[k] = names[k];
		return 0;
	}
	return path_known ? -EPERM : -ENOENT;
}

const char *srv_param(const struct srv_req *r, const char *name)
{
	size_t nl = strlen(name);
	for (size_t i = 0; i < r->n_params; i++)
		if (!strncmp(r->pnames[i], name, nl) &&
		    (r->pnames[i][nl] == '}' || r->pnames[i][nl] == '*'))
			return r->pvals[i];
	return NULL;
}

const char *srv_header(const struct srv_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *srv_query(const struct srv_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

int srv_query_decoded(const struct srv_req *r, const char *name, char *out, size_t n)
{
	const char *raw = srv_query(r, name);
	return raw ? srv_decode(raw, out, n) : -ENOENT;
}

int srv_decode(const char *in, char *out, size_t n)
{
	size_t l = strlen(in);
	if (l >= n)
		return -ENAMETOOLONG;
	memcpy(out, in, l + 1);
	size_t dl = MHD_http_unescape(out);
	return dl != strlen(out) ? -EINVAL : 0; /* "%00" would have cut the string */
}

/* -- requests ---------------------------------------------------------------------------- */

void srv_req_ref(struct srv_req *r)
{
	r->refs++;
}

void srv_req_unref(struct srv_req *r)
{
	if (--r->refs > 0)
		return;
	if (r->state_free && r->state)
		r->state_free(r->state);
	if (r->have_sb)
		json_decref(r->sb.metadata);
	cr_buf_free(&r->body);
	free(r->path);
	free(r);
}

void srv_req_count_out(struct srv_req *r, size_t n)
{
	r->bytes_out += n;
}

static void log_request(const struct srv_req *r, uint64_t dur_us)
{
	char ts[32];
	srv_rfc3339(srv_unix_ms(), ts, sizeof ts);
	char route[160];
	if (r->route)
		snprintf(route, sizeof route, "%s %s", r->route->method, r->route->pattern);
	else
		snprintf(route, sizeof route, "unmatched");
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:i, s:f, s:I}", "ts", ts, "request_id",
			      r->request_id, "method", r->method ? r->method : "", "route", route,
			      "status", (int)r->status, "duration_ms", (double)dur_us / 1000.0,
			      "bytes", (json_int_t)r->bytes_out);
	if (!o)
		return;
	if (r->sandbox[0])
		json_object_set_new(o, "sandbox", json_string(r->sandbox));
	if (r->error_code)
		json_object_set_new(o, "error", json_string(r->error_code));
	char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(15));
	json_decref(o);
	if (!s)
		return;
	size_t l = strlen(s);
	s[l] = '\n'; /* overwrites the NUL: one write(2), so lines never interleave */
	(void)!write(2, s, l + 1);
	free(s);
}

void srv_on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
		      enum MHD_RequestTerminationCode why)
{
	(void)cls;
	struct srv_req *r = *con_cls;
	if (!r)
		return;
	*con_cls = NULL;
	if (!r->responded || why != MHD_REQUEST_TERMINATED_COMPLETED_OK) {
		if (!r->status)
			r->status = 499; /* nginx's "client closed request": nothing was answered */
	}
	uint64_t dur = srv_now_us() - r->t0_us;
	srv_metrics_request(r->route ? r->route_idx : SRV_MAX_ROUTES, r->status, dur);
	if (srv_cfg()->log_requests)
		log_request(r, dur);
	/* the connection may carry another request: its head gets a deadline again */
	srv_conn_deadline(conn, srv_now_us() + (uint64_t)srv_cfg()->idle_timeout_s * 1000000);
	srv_req_unref(r);
}

/* -- replies ----------------------------------------------------------------------------- */

static enum MHD_Result queue(struct srv_req *r, unsigned status, struct MHD_Response *resp,
			     const char *content_type)
{
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "X-Request-Id", r->request_id);
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	if (content_type)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	r->responded = true;
	r->status = status;
	enum MHD_Result ret = MHD_queue_response(r->conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

enum MHD_Result srv_reply_data(struct srv_req *r, unsigned status, const char *content_type,
			       const char *data, size_t len)
{
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
	r->bytes_out += len;
	return queue(r, status, resp, content_type);
}

enum MHD_Result srv_reply_json_header(struct srv_req *r, unsigned status, json_t *body,
				      const char *header, const char *value)
{
	char *s = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
	json_decref(body);
	if (!s)
		return srv_reply_error(r, 500, "internal", "out of memory");
	size_t l = strlen(s);
	struct MHD_Response *resp = MHD_create_response_from_buffer(l, s, MHD_RESPMEM_MUST_FREE);
	if (!resp)
		free(s);
	else if (header)
		MHD_add_response_header(resp, header, value);
	r->bytes_out += l;
	return queue(r, status, resp, "application/json");
}

enum MHD_Result srv_reply_json(struct srv_req *r, unsigned status, json_t *body)
{
	return srv_reply_json_header(r, status, body, NULL, NULL);
}

enum MHD_Result srv_reply_empty(struct srv_req *r, unsigned status)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"",
								    MHD_RESPMEM_PERSISTENT);
	return queue(r, status, resp, NULL);
}

/* The dialect of a request's errors: its route's, or -- for a path no route knows -- E2B's
 * when the request carries an E2B credential (so that the SDKs can read the message). */
static enum srv_dialect dialect_of(const struct srv_req *r)
{
	if (r->route)
		return r->route->dialect;
	if (srv_header(r, "X-API-KEY") || srv_header(r, "E2b-Sandbox-Id"))
		return SRV_E2B;
	return SRV_NATIVE;
}

/* A streaming Connect RPC reports errors inside a 200 reply: the end-of-stream envelope. */
static enum MHD_Result stream_error(struct srv_req *r, unsigned status, const char *msg)
{
	struct cr_buf b;
	cr_buf_init(&b, 4096);
	if (e2b_end_stream(&b, e2b_connect_code(status), msg) < 0) {
		cr_buf_free(&b);
		return MHD_NO;
	}
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(b.len, b.data, MHD_RESPMEM_MUST_COPY);
	r->bytes_out += b.len;
	cr_buf_free(&b);
	return queue(r, 200, resp, "application/connect+json");
}

enum MHD_Result srv_reply_error(struct srv_req *r, unsigned status, const char *code,
				const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	enum srv_dialect d = dialect_of(r);
	if (status == 401)
		srv_metrics_refused(SRV_REFUSED_AUTH);
	else if (status == 429)
		srv_metrics_refused(SRV_REFUSED_CAPACITY);
	else if (status == 413 || status == 411)
		srv_metrics_refused(SRV_REFUSED_TOO_LARGE);
	else if (status == 400)
		srv_metrics_refused(SRV_REFUSED_BAD_REQUEST);
	r->error_code = code;
	if (d == SRV_CONNECT && r->route && r->route->stream)
		return stream_error(r, status, msg);
	json_t *o = d == SRV_E2B     ? json_pack("{s:i, s:s}", "code", (int)status, "message", msg)
		  : d == SRV_CONNECT ? json_pack("{s:s, s:s}", "code", e2b_connect_code(status),
						 "message", msg)
				     : json_pack("{s:{s:s, s:s}}", "error", "code", code,
						 "message", msg);
	char *s = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
	json_decref(o);
	struct MHD_Response *resp =
		s ? MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE) : NULL;
	if (!resp) {
		free(s);
		return MHD_NO;
	}
	r->bytes_out += strlen(s);
	if (status == 429)
		MHD_add_response_header(resp, "Retry-After", "2");
	if (status == 401 && d == SRV_NATIVE)
		MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"corral\"");
	if (status == 503)
		MHD_add_response_header(resp, "Retry-After", "5");
	if (status == 405 && r->allow[0])
		MHD_add_response_header(resp, "Allow", r->allow);
	return queue(r, status, resp, "application/json");
}

enum MHD_Result srv_reply_errno(struct srv_req *r, int neg_errno, const struct cr_err *err)
{
	const char *code;
	unsigned status = srv_status_for_errno(neg_errno, &code);
	const char *msg = err && err->msg[0] ? err->msg : strerror(-neg_errno);
	if (status >= 500)
		cr_log(CR_LOG_WARN, "request %s: %s", r->request_id, msg);
	return srv_reply_error(r, status, code, "%s", msg);
}

struct stream_wrap {
	struct srv_req *r;
	MHD_ContentReaderCallback reader;
	void *cls;
	MHD_ContentReaderFreeCallback release;
};

static ssize_t wrap_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream_wrap *w = cls;
	ssize_t n = w->reader(w->cls, pos, buf, max);
	if (n > 0)
		w->r->bytes_out += (uint64_t)n;
	return n;
}

static void wrap_free(void *cls)
{
	struct stream_wrap *w = cls;
	if (w->release)
		w->release(w->cls);
	srv_req_unref(w->r);
	free(w);
}

enum MHD_Result srv_reply_stream(struct srv_req *r, unsigned status, const char *content_type,
				 uint64_t size, MHD_ContentReaderCallback reader, void *cls,
				 MHD_ContentReaderFreeCallback release)
{
	struct stream_wrap *w = calloc(1, sizeof *w);
	if (!w) {
		if (release)
			release(cls);
		return srv_reply_error(r, 503, "unavailable", "out of memory");
	}
	*w = (struct stream_wrap){r, reader, cls, release};
	srv_req_ref(r);
	struct MHD_Response *resp =
		MHD_create_response_from_callback(size, 64 * 1024, wrap_read, w, wrap_free);
	if (!resp) {
		wrap_free(w);
		return MHD_NO;
	}
	return queue(r, status, resp, content_type);
}

/* -- the access handler ------------------------------------------------------------------ */

static bool authenticate(struct srv_req *r)
{
	const struct srv_keys *keys = &srv_cfg()->keys;
	if (r->route->auth == SRV_AUTH_API_KEY) {
		const char *k = srv_header(r, "X-API-KEY");
		r->key = k ? srv_keys_match(keys, k, strlen(k), true) : -1;
		return r->key >= 0;
	}
	const char *h = srv_header(r, MHD_HTTP_HEADER_AUTHORIZATION);
	if (!h || strncasecmp(h, "Bearer ", 7))
		return false;
	h += 7;
	while (*h == ' ')
		h++;
	size_t n = strlen(h);
	while (n && h[n - 1] == ' ')
		n--;
	r->key = srv_keys_match(keys, h, n, false);
	return r->key >= 0;
}

/* The sandbox a data-plane request is for: E2b-Sandbox-Id, else a Host of the form
 * "<port>-<id>.<domain>" (E2B's own addressing, for a TLS proxy in front of corral). */
static bool sandbox_named(const struct srv_req *r, char *id, size_t n)
{
	const char *h = srv_header(r, "E2b-Sandbox-Id");
	if (h) {
		snprintf(id, n, "%s", h);
		return true;
	}
	const char *host = srv_header(r, MHD_HTTP_HEADER_HOST);
	const char *dash = host ? strchr(host, '-') : NULL;
	const char *dot = dash ? strchr(dash, '.') : NULL;
	if (!dot || (size_t)(dot - dash - 1) >= n)
		return false;
	snprintf(id, n, "%.*s", (int)(dot - dash - 1), dash + 1);
	return true;
}

static int sandbox_auth(struct srv_req *r)
{
	char id[SRV_ID_LEN + 8];
	if (!sandbox_named(r, id, sizeof id))
		return -ENOENT;
	snprintf(r->sandbox, sizeof r->sandbox, "%.*s", (int)strspn(id,
		 "abcdefghijklmnopqrstuvwxyz0123456789_"), id);
	const char *tok = srv_header(r, "X-Access-Token");
	if (!tok)
		tok = srv_header(r, "E2B-Traffic-Access-Token");
	int rc = srv_ids_get_by_token(id, tok, &r->sb);
	if (rc == 0) {
		r->have_sb = true;
		r->key = r->sb.owner;
	}
	return rc;
}

static enum MHD_Result begin(struct srv_req *r, const char *url)
{
	char allow[128];
	int rr = route_request(r, url, allow, sizeof allow);
	if (rr == -ENOMEM)
		return srv_reply_error(r, 503, "unavailable", "out of memory");
	/* an unknown path says nothing before auth either way: 404 is what anyone learns */
	if (rr == -ENOENT)
		return srv_reply_error(r, 404, "not_found", "no such route");
	if (rr == -EPERM) {
		r->route = NULL;
		snprintf(r->allow, sizeof r->allow, "%s", allow);
		return srv_reply_error(r, 405, "method_not_allowed", "use %s here", allow);
	}
	const char *id = srv_param(r, "id");
	if (id) {
		size_t k = 0;
		for (const char *p = id; *p && k < sizeof r->sandbox - 1; p++)
			if ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
			    (*p >= 'A' && *p <= 'Z') || *p == '_' || *p == '-')
				r->sandbox[k++] = *p;
		r->sandbox[k] = '\0';
	}
	if (r->route->auth == SRV_AUTH_SANDBOX) {
		int a = sandbox_auth(r);
		if (a == -ENOENT)
			return srv_reply_error(r, 502, "sandbox_not_found", "the sandbox was not found: "
					       "it ended, timed out or never existed");
		if (a < 0)
			return srv_reply_error(r, 401, "unauthorized",
					       "missing or invalid access token for this sandbox");
	} else if (r->route->auth != SRV_AUTH_NONE && !authenticate(r)) {
		return srv_reply_error(r, 401, "unauthorized", "missing or invalid API key");
	}
	const char *cl = srv_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl && r->route->body != SRV_BODY_RAW) {
		char *end;
		errno = 0;
		unsigned long long v = strtoull(cl, &end, 10);
		if (errno || *end || v > srv_cfg()->max_json_bytes)
			return srv_reply_error(r, 413, "too_large",
					       "the request body exceeds %llu bytes",
					       (unsigned long long)srv_cfg()->max_json_bytes);
	}
	if (r->route->begin)
		return r->route->begin(r);
	return MHD_YES;
}

static void body_chunk(struct srv_req *r, const char *data, size_t len)
{
	r->body_len += len;
	if (r->route->body == SRV_BODY_RAW) {
		if (r->route->upload)
			r->route->upload(r, data, len);
		return;
	}
	if (r->route->body == SRV_BODY_NONE && r->body_len > srv_cfg()->max_json_bytes)
		r->body_too_large = true;
	if (r->body_too_large || r->route->body != SRV_BODY_JSON)
		return;
	if (cr_buf_append(&r->body, data, len) < 0) {
		r->body_too_large = true;
		cr_buf_free(&r->body);
	}
}

/* A client may name its request (X-Request-Id, echoed in the reply and the log line) to match
 * replies to requests; one that is not 1-64 of [A-Za-z0-9._:-] gets an id of ours instead, so
 * nothing a client sends can break a log line. */
static void set_request_id(struct srv_req *r)
{
	const char *v = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Request-Id");
	size_t n = v ? strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				 "0123456789._:-")
		     : 0;
	if (n && !v[n] && n <= SRV_REQUEST_ID_MAX)
		memcpy(r->request_id, v, n + 1);
	else
		snprintf(r->request_id, sizeof r->request_id, "req_%08x%08llx", id_prefix,
			 (unsigned long long)++id_seq);
}

enum MHD_Result srv_on_request(void *cls, struct MHD_Connection *conn, const char *url,
			       const char *method, const char *version, const char *upload_data,
			       size_t *upload_size, void **con_cls)
{
	(void)cls;
	(void)version;
	struct srv_req *r = *con_cls;
	if (!r) {
		r = calloc(1, sizeof *r);
		if (!r)
			return MHD_NO;
		r->refs = 1;
		r->conn = conn;
		r->method = method;
		r->key = -1;
		r->client_fd = -1;
		r->route_idx = SRV_MAX_ROUTES;
		r->t0_us = srv_now_us();
		cr_buf_init(&r->body, srv_cfg()->max_json_bytes);
		set_request_id(r);
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (ci)
			r->client_fd = ci->connect_fd;
		srv_conn_deadline(conn, 0); /* the head is in: no deadline while it is handled */
		*con_cls = r;
		return begin(r, url);
	}
	if (*upload_size) {
		if (!r->responded)
			body_chunk(r, upload_data, *upload_size);
		*upload_size = 0;
		/* an over-long body without a length is read and dropped, but not forever */
		if (r->body_too_large && r->body_len > 4 * srv_cfg()->max_json_bytes)
			return MHD_NO;
		return MHD_YES;
	}
	if (r->responded)
		return MHD_YES;
	if (r->body_too_large)
		return srv_reply_error(r, 413, "too_large", "the request body exceeds %llu bytes",
				       (unsigned long long)srv_cfg()->max_json_bytes);
	return r->route->handle(r);
}

void srv_http_init(void)
{
	flatten_routes();
	srv_metrics_set_routes(routes, n_routes);
	if (getrandom(&id_prefix, sizeof id_prefix, 0) != sizeof id_prefix)
		id_prefix = (uint32_t)getpid();
}
