/* server/api_json.c -- see api_json.h.  Pure: request JSON -> engine structs, engine events ->
 * response JSON.  Every value from a request is checked for type and range here, before the
 * engine (which checks again) sees it. */
#include "server/api_json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/json.h"
#include "core/log.h"
#include "core/parse.h"
#include "core/path.h"
#include "core/text.h"

/* -- helpers ---------------------------------------------------------------------------- */

json_t *srv_json_object(const char *body, size_t len, size_t max, struct cr_err *err)
{
	if (len == 0) {
		cr_failx(err, EINVAL, "the request body must be a JSON object");
		return NULL;
	}
	json_t *j = cr_json_parse(body, len, max, err);
	if (j && !json_is_object(j)) {
		json_decref(j);
		cr_failx(err, EINVAL, "the request body must be a JSON object");
		return NULL;
	}
	return j;
}

/* Refuses keys outside allowed (NULL-terminated). */
int srv_json_only_keys(const json_t *o, const char *const *allowed, const char *where,
		       struct cr_err *err)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)o, k, v) {
		bool ok = false;
		for (size_t i = 0; allowed[i] && !ok; i++)
			ok = !strcmp(k, allowed[i]);
		if (!ok) {
			char q[80];
			cr_log_quote(q, sizeof q, k, strlen(k));
			return cr_failx(err, EINVAL, "unknown field %s%s%s", q, where ? " in " : "",
					where ? where : "");
		}
	}
	return 0;
}

/* A whole number in [min, max] (a JSON integer, or a real without fraction). */
static int get_uint(const json_t *o, const char *key, uint64_t min, uint64_t max, bool *present,
		    uint64_t *out, struct cr_err *err)
{
	json_t *v = json_object_get(o, key);
	*present = v && !json_is_null(v);
	if (!*present)
		return 0;
	unsigned long long u = 0;
	if (!json_is_number(v))
		return cr_failx(err, EINVAL, "'%s' must be a number", key);
	if (cr_json_get_uint(o, key, max, &u, err) < 0)
		return -EINVAL;
	if (u < min)
		return cr_failx(err, EINVAL, "'%s' must be between %llu and %llu", key,
				(unsigned long long)min, (unsigned long long)max);
	*out = u;
	return 0;
}

/* Seconds as a number (fractions allowed) -> milliseconds in [1, max_s * 1000]. */
static int get_seconds_ms(const json_t *o, const char *key, uint32_t max_s, bool *present,
			  uint32_t *out_ms, struct cr_err *err)
{
	json_t *v = json_object_get(o, key);
	*present = v && !json_is_null(v);
	if (!*present)
		return 0;
	double d;
	if (json_is_string(v)) {
		uint64_t ms;
		if (cr_parse_duration(json_string_value(v), &ms, err) < 0)
			return cr_wrap(err, "'%s'", key);
		d = (double)ms / 1000.0;
	} else if (json_is_number(v)) {
		d = json_number_value(v);
	} else {
		return cr_failx(err, EINVAL, "'%s' must be a number of seconds", key);
	}
	if (!isfinite(d) || d < 0.001 || d > (double)max_s)
		return cr_failx(err, EINVAL, "'%s' must be between 0.001 and %u seconds", key, max_s);
	*out_ms = (uint32_t)llround(d * 1000.0);
	if (*out_ms == 0)
		*out_ms = 1;
	return 0;
}

int srv_json_size(const json_t *v, const char *name, uint64_t *out, struct cr_err *err)
{
	if (json_is_string(v)) {
		if (cr_parse_size(json_string_value(v), out, err) < 0)
			return cr_wrap(err, "'%s'", name);
		return 0;
	}
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*out = (uint64_t)json_integer_value(v);
		return 0;
	}
	if (json_is_real(v)) {
		double d = json_real_value(v);
		if (d >= 0 && d < 18e18 && d == floor(d)) {
			*out = (uint64_t)d;
			return 0;
		}
	}
	return cr_failx(err, EINVAL, "'%s' must be a number of bytes or a size like \"512M\"", name);
}

/* -- POST /v1/sandboxes ------------------------------------------------------------------- */

static int parse_limits(const json_t *l, struct eng_limits *out, struct cr_err *err)
{
	static const char *const KEYS[] = {"memory", "cpus", "pids", "cell_timeout_s", "max_cells",
					   "idle_timeout_s", "tmp", NULL};
	if (!json_is_object(l))
		return cr_failx(err, EINVAL, "'limits' must be an object");
	int r = srv_json_only_keys(l, KEYS, "'limits'", err);
	if (r < 0)
		return r;
	bool present;
	uint64_t u = 0;
	json_t *v = json_object_get(l, "memory");
	if (v && !json_is_null(v)) {
		if ((r = srv_json_size(v, "memory", &u, err)) < 0)
			return r;
		if (u < (16ULL << 20) || u > (1ULL << 40))
			return cr_failx(err, EINVAL, "'memory' must be between 16M and 1T");
		out->memory_bytes = u;
	}
	v = json_object_get(l, "tmp");
	if (v && !json_is_null(v)) {
		if ((r = srv_json_size(v, "tmp", &u, err)) < 0)
			return r;
		if (u < (1ULL << 20) || u > (64ULL << 30))
			return cr_failx(err, EINVAL, "'tmp' must be between 1M and 64G");
		out->tmp_bytes = u;
	}
	v = json_object_get(l, "cpus");
	if (v && !json_is_null(v)) {
		double d;
		if (json_is_string(v)) {
			if (cr_parse_double(json_string_value(v), 0.01, 1024, &d, err) < 0)
				return cr_wrap(err, "'cpus'");
		} else if (json_is_number(v)) {
			d = json_number_value(v);
		} else {
			return cr_failx(err, EINVAL, "'cpus' must be a number");
		}
		if (!isfinite(d) || d < 0.01 || d > 1024)
			return cr_failx(err, EINVAL, "'cpus' must be between 0.01 and 1024");
		out->cpus_milli = (uint32_t)llround(d * 1000.0);
	}
	if ((r = get_uint(l, "pids", 8, 65536, &present, &u, err)) < 0)
		return r;
	if (present)
		out->pids = (uint32_t)u;
	if ((r = get_uint(l, "max_cells", 0, 1000000000, &present, &u, err)) < 0)
		return r;
	if (present)
		out->max_cells = (uint32_t)u;
	if ((r = get_uint(l, "idle_timeout_s", 1, SRV_TIMEOUT_MAX_S, &present, &u, err)) < 0)
		return r;
	if (present)
		out->idle_timeout_s = (uint32_t)u;
	uint32_t ms;
	if ((r = get_seconds_ms(l, "cell_timeout_s", SRV_CELL_TIMEOUT_MAX_S, &present, &ms, err)) < 0)
		return r;
	if (present)
		out->cell_timeout_ms = ms;
	return 0;
}

static bool env_name_ok(const char *k)
{
	size_t n = strlen(k);
	if (n == 0 || n > SRV_ENV_NAME_MAX || (k[0] >= '0' && k[0] <= '9'))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = k[i];
		if (!(c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9')))
			return false;
	}
	return true;
}

int srv_json_env(const json_t *e, const char *name, char *block, size_t cap,
		 struct cr_err *err)
{
	if (!json_is_object(e))
		return cr_failx(err, EINVAL, "'%s' must be an object of strings", name);
	if (json_object_size(e) > SRV_ENV_MAX)
		return cr_failx(err, EINVAL, "'%s' has more than %u variables", name, SRV_ENV_MAX);
	size_t off = 0;
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)e, k, v) {
		if (!env_name_ok(k))
			return cr_failx(err, EINVAL, "'%s': names are [A-Za-z_][A-Za-z0-9_]*, at "
					"most %u characters", name, SRV_ENV_NAME_MAX);
		if (!json_is_string(v))
			return cr_failx(err, EINVAL, "'%s': values must be strings", name);
		size_t kl = strlen(k), vl = json_string_length(v);
		if (memchr(json_string_value(v), '\0', vl))
			return cr_failx(err, EINVAL, "'%s': values cannot hold NUL bytes", name);
		/* K=V\0 plus the block's final \0 */
		if (off + kl + 1 + vl + 1 + 1 > cap)
			return cr_failx(err, EINVAL, "'%s' exceeds %zu bytes in total", name, cap - 1);
		memcpy(block + off, k, kl);
		block[off + kl] = '=';
		memcpy(block + off + kl + 1, json_string_value(v), vl);
		block[off + kl + 1 + vl] = '\0';
		off += kl + 1 + vl + 1;
	}
	block[off] = '\0';
	return 0;
}

int srv_json_metadata(const json_t *m, json_t **out, struct cr_err *err)
{
	if (!json_is_object(m))
		return cr_failx(err, EINVAL, "'metadata' must be an object of strings");
	if (json_object_size(m) > SRV_META_MAX)
		return cr_failx(err, EINVAL, "'metadata' has more than %u keys", SRV_META_MAX);
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)m, k, v) {
		if (!*k || strlen(k) > SRV_META_KEY_MAX)
			return cr_failx(err, EINVAL, "'metadata' keys must be 1-%u bytes", SRV_META_KEY_MAX);
		if (!json_is_string(v) || json_string_length(v) > SRV_META_VALUE_MAX)
			return cr_failx(err, EINVAL, "'metadata' values must be strings of at most %u "
					"bytes", SRV_META_VALUE_MAX);
	}
	*out = json_deep_copy(m);
	return *out ? 0 : cr_fail(err, ENOMEM, "metadata");
}

int srv_parse_create(const char *body, size_t len, struct srv_create_req *out,
		     struct cr_err *err)
{
	static const char *const KEYS[] = {"mode", "timeout_s", "limits", "env", "metadata", NULL};
	memset(out, 0, sizeof *out);
	/* an empty body means "all defaults" */
	json_t *j = len ? srv_json_object(body, len, 1u << 20, err) : json_object();
	if (!j)
		return -(err && err->code ? err->code : EINVAL);
	int r = srv_json_only_keys(j, KEYS, NULL, err);
	const char *mode = NULL;
	if (r == 0 && (r = cr_json_get_str(j, "mode", &mode, err)) == 0 && mode) {
		if (!strcmp(mode, "stateful"))
			out->mode = ENG_STATEFUL;
		else if (!strcmp(mode, "stateless"))
			out->mode = ENG_STATELESS;
		else
			r = cr_failx(err, EINVAL, "'mode' must be \"stateful\" or \"stateless\"");
	}
	bool present;
	uint64_t u = 0;
	if (r == 0 && (r = get_uint(j, "timeout_s", 1, SRV_TIMEOUT_MAX_S, &present, &u, err)) == 0 &&
	    present)
		out->timeout_s = (uint32_t)u;
	json_t *v;
	if (r == 0 && (v = json_object_get(j, "limits")) && !json_is_null(v))
		r = parse_limits(v, &out->limits, err);
	if (r == 0 && (v = json_object_get(j, "env")) && !json_is_null(v))
		r = srv_json_env(v, "env", out->env, sizeof out->env, err);
	if (r == 0 && (v = json_object_get(j, "metadata")) && !json_is_null(v))
		r = srv_json_metadata(v, &out->metadata, err);
	if (r == 0 && !out->metadata && !(out->metadata = json_object()))
		r = cr_fail(err, ENOMEM, "metadata");
	json_decref(j);
	if (r < 0)
		srv_create_req_free(out);
	return r;
}

void srv_create_req_free(struct srv_create_req *q)
{
	json_decref(q->metadata);
	q->metadata = NULL;
}

/* -- POST /v1/sandboxes/{id}/execute ------------------------------------------------------ */

static bool context_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= ENG_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!(c == '_' || c == '-' || c == '.' || (c >= 'A' && c <= 'Z') ||
		      (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
			return false;
	}
	return true;
}

int srv_parse_execute(const char *body, size_t len, struct srv_exec_req *out,
		      struct cr_err *err)
{
	static const char *const KEYS[] = {"code", "context", "timeout_s", "svg", NULL};
	memset(out, 0, sizeof *out);
	snprintf(out->context, sizeof out->context, "default");
	json_t *j = srv_json_object(body, len, 8u << 20, err);
	if (!j)
		return -(err && err->code ? err->code : EINVAL);
	int r = srv_json_only_keys(j, KEYS, NULL, err);
	json_t *code = json_object_get(j, "code");
	if (r == 0 && !json_is_string(code))
		r = cr_failx(err, EINVAL, "'code' is required and must be a string");
	if (r == 0 && json_string_length(code) > ENG_MAX_CODE)
		r = cr_failx(err, E2BIG, "'code' exceeds %u bytes", ENG_MAX_CODE);
	if (r == 0 && memchr(json_string_value(code), '\0', json_string_length(code)))
		r = cr_failx(err, EINVAL, "'code' cannot hold NUL bytes");
	const char *ctx = NULL;
	if (r == 0 && (r = cr_json_get_str(j, "context", &ctx, err)) == 0 && ctx) {
		if (!context_name_ok(ctx))
			r = cr_failx(err, EINVAL, "'context' must be 1-%d characters of "
					"[A-Za-z0-9_.-]", ENG_NAME_MAX - 1);
		else
			snprintf(out->context, sizeof out->context, "%s", ctx);
	}
	bool present;
	if (r == 0)
		r = get_seconds_ms(j, "timeout_s", SRV_CELL_TIMEOUT_MAX_S, &present, &out->timeout_ms,
				   err);
	int svg = 0;
	if (r == 0 && (r = cr_json_get_bool(j, "svg", &svg, err)) == 0)
		out->svg = svg != 0;
	if (r == 0) {
		out->code_len = json_string_length(code);
		out->code = malloc(out->code_len + 1);
		if (!out->code)
			r = cr_fail(err, ENOMEM, "code");
		else {
			memcpy(out->code, json_string_value(code), out->code_len);
			out->code[out->code_len] = '\0';
		}
	}
	json_decref(j);
	if (r < 0)
		srv_exec_req_free(out);
	return r;
}

void srv_exec_req_free(struct srv_exec_req *q)
{
	free(q->code);
	q->code = NULL;
}

int srv_parse_timeout(const char *body, size_t len, uint32_t *timeout_s, struct cr_err *err)
{
	static const char *const KEYS[] = {"timeout_s", NULL};
	json_t *j = srv_json_object(body, len, 1u << 16, err);
	if (!j)
		return -(err && err->code ? err->code : EINVAL);
	bool present = false;
	uint64_t u = 0;
	int r = srv_json_only_keys(j, KEYS, NULL, err);
	if (r == 0)
		r = get_uint(j, "timeout_s", 1, SRV_TIMEOUT_MAX_S, &present, &u, err);
	if (r == 0 && !present)
		r = cr_failx(err, EINVAL, "'timeout_s' is required");
	json_decref(j);
	if (r == 0)
		*timeout_s = (uint32_t)u;
	return r;
}

/* -- paths and errors ------------------------------------------------------------------- */

int srv_session_path(const char *decoded, char *out, size_t n, struct cr_err *err)
{
	if (!decoded || !*decoded)
		return cr_failx(err, EINVAL, "the file path is empty");
	if (decoded[0] == '/')
		return cr_failx(err, EINVAL, "the file path has an empty component (\"//\")");
	if (decoded[strlen(decoded) - 1] == '/')
		return cr_failx(err, EINVAL, "the file path ends with '/'");
	if (cr_path_check_relative(decoded, err) < 0)
		return cr_failx(err, EINVAL, "bad file path: %s", err ? err->msg : "");
	size_t len = strlen(decoded);
	if (len + 2 > n || len + 2 > ENG_PATH_MAX)
		return cr_failx(err, ENAMETOOLONG, "the file path is longer than %d bytes",
				ENG_PATH_MAX - 2);
	out[0] = '/';
	memcpy(out + 1, decoded, len + 1);
	return 0;
}

static const struct {
	int errnum;
	unsigned status;
	const char *code;
} ERRMAP[] = {
	{EINVAL, 400, "invalid_argument"},   {EILSEQ, 400, "invalid_argument"},
	{ERANGE, 400, "invalid_argument"},   {ENAMETOOLONG, 400, "invalid_argument"},
	{EISDIR, 400, "is_a_directory"},     {ENOTDIR, 400, "not_a_directory"},
	{EPROTO, 502, "engine_error"},       {EACCES, 403, "forbidden"},
	{EPERM, 403, "forbidden"},           {ELOOP, 403, "forbidden"},
	{EXDEV, 403, "forbidden"},           {ENOENT, 404, "not_found"},
	{ESRCH, 404, "not_found"},           {EBUSY, 409, "busy"},
	{EEXIST, 409, "conflict"},           {EDQUOT, 409, "cell_limit_reached"},
	{ENOTEMPTY, 409, "conflict"},        {E2BIG, 413, "too_large"},
	{EFBIG, 413, "too_large"},           {EAGAIN, 429, "capacity"},
	{ENOSPC, 507, "insufficient_storage"}, {ESHUTDOWN, 503, "unavailable"},
	{ECONNREFUSED, 503, "unavailable"},  {ECONNRESET, 503, "unavailable"},
	{EPIPE, 503, "unavailable"},         {ENOMEM, 503, "unavailable"},
	{ETIMEDOUT, 504, "timeout"},         {ENOSYS, 501, "not_implemented"},
};

unsigned srv_status_for_errno(int errnum, const char **code)
{
	if (errnum < 0)
		errnum = -errnum;
	for (size_t i = 0; i < sizeof ERRMAP / sizeof *ERRMAP; i++) {
		if (ERRMAP[i].errnum == errnum && ERRMAP[i].code) {
			if (code)
				*code = ERRMAP[i].code;
			return ERRMAP[i].status;
		}
	}
	if (code)
		*code = "internal";
	return 500;
}
