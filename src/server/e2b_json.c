/* server/e2b_json.c -- see e2b_json.h.  Pure: the control plane's bodies and the code
 * interpreter's events, built and checked with jansson (envd's Connect messages are in
 * e2b_envd_json.c). */
#include "server/e2b_json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/text.h"
#include "server/api_json.h"
#include "server/e2b_internal.h"

/* -- helpers ---------------------------------------------------------------------------- */

static int put_line(struct cr_buf *out, json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!s)
		return -ENOMEM;
	int r = cr_buf_puts(out, s);
	free(s);
	return r < 0 ? r : cr_buf_append(out, "\n", 1);
}

/* -- control plane ---------------------------------------------------------------------- */

static const char *const TEMPLATES[] = {"base", "code-interpreter-v1", "code-interpreter",
					"code-interpreter-beta", "corral", NULL};

int e2b_parse_create(const char *body, size_t len, struct e2b_create_req *out,
		     struct cr_err *err)
{
	memset(out, 0, sizeof *out);
	snprintf(out->template_id, sizeof out->template_id, "%s", E2B_TEMPLATE_DEFAULT);
	json_t *j = len ? srv_json_object(body, len, 1u << 20, err) : json_object();
	if (!j)
		return -(err && err->code ? err->code : EINVAL);
	int r = 0;
	json_t *v;
	static const struct {
		const char *key, *what;
	} UNSUPPORTED[] = {
		{"allow_internet_access", "internet access (corral sandboxes have no network)"},
		{"network", "network rules (corral sandboxes have no network)"},
		{"autoPause", "pausing on timeout"},
		{"autoResume", "auto-resume"},
		{"mcp", "MCP gateways"},
		{"volumeMounts", "volumes"},
		{"iam", "IAM tokens"},
	};
	for (size_t i = 0; i < sizeof UNSUPPORTED / sizeof *UNSUPPORTED; i++) {
		v = json_object_get(j, UNSUPPORTED[i].key);
		if (!strcmp(UNSUPPORTED[i].key, "autoResume") && json_is_object(v))
			v = json_object_get(v, "enabled");
		if (wants(v)) {
			r = cr_failx(err, EINVAL, "'%s': corral does not provide %s",
				     UNSUPPORTED[i].key, UNSUPPORTED[i].what);
			goto out;
		}
	}
	if (!is_null_or_absent(v = json_object_get(j, "templateID"))) {
		if (!json_is_string(v)) {
			r = cr_failx(err, EINVAL, "'templateID' must be a string");
			goto out;
		}
		const char *t = json_string_value(v);
		bool known = false;
		for (size_t i = 0; TEMPLATES[i] && !known; i++)
			known = !strcmp(t, TEMPLATES[i]);
		if (!known) {
			r = cr_failx(err, EINVAL, "template '%.64s' does not exist here: corral serves "
				     "one Python image as 'base' and 'code-interpreter-v1'", t);
			goto out;
		}
		snprintf(out->template_id, sizeof out->template_id, "%s", t);
	}
	if (!is_null_or_absent(v = json_object_get(j, "timeout"))) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > SRV_TIMEOUT_MAX_S) {
			r = cr_failx(err, EINVAL, "'timeout' must be 1..%u seconds", SRV_TIMEOUT_MAX_S);
			goto out;
		}
		out->timeout_s = (uint32_t)json_integer_value(v);
	}
	if (!is_null_or_absent(v = json_object_get(j, "envVars")) &&
	    (r = srv_json_env(v, "envVars", out->env, sizeof out->env, err)) < 0)
		goto out;
	v = json_object_get(j, "metadata");
	if (is_null_or_absent(v))
		out->metadata = json_object();
	else if ((r = srv_json_metadata(v, &out->metadata, err)) < 0)
		goto out;
	if (!out->metadata)
		r = cr_fail(err, ENOMEM, "metadata");
out:
	json_decref(j);
	if (r < 0)
		e2b_create_req_free(out);
	return r;
}

void e2b_create_req_free(struct e2b_create_req *q)
{
	json_decref(q->metadata);
	q->metadata = NULL;
}

int e2b_parse_timeout(const char *body, size_t len, bool *present, uint32_t *timeout_s,
		      struct cr_err *err)
{
	*present = false;
	if (len == 0)
		return 0;
	json_t *j = srv_json_object(body, len, 64u << 10, err);
	if (!j)
		return -EINVAL;
	json_t *v = json_object_get(j, "timeout");
	int r = 0;
	if (!is_null_or_absent(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > SRV_TIMEOUT_MAX_S)
			r = cr_failx(err, EINVAL, "'timeout' must be 1..%u seconds", SRV_TIMEOUT_MAX_S);
		else {
			*timeout_s = (uint32_t)json_integer_value(v);
			*present = true;
		}
	}
	json_decref(j);
	return r;
}

static unsigned cpu_count(const struct e2b_sandbox_view *v)
{
	unsigned m = v->info->limits.cpus_milli;
	if (!m)
		return v->host_cpus ? v->host_cpus : 1;
	return m < 1000 ? 1 : (m + 999) / 1000;
}

json_t *e2b_sandbox_created(const struct e2b_sandbox_view *v)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:n}", "sandboxID", v->id, "templateID",
			 v->template_id, "clientID", E2B_CLIENT_ID, "envdVersion",
			 E2B_ENVD_VERSION, "envdAccessToken", v->token, "trafficAccessToken",
			 v->token, "domain");
}

json_t *e2b_sandbox_detail(const struct e2b_sandbox_view *v)
{
	char started[32], ends[32];
	rfc3339(v->info->created_unix_ms ? v->info->created_unix_ms : v->created_unix_ms, started,
		sizeof started);
	rfc3339(v->info->expires_unix_ms, ends, sizeof ends);
	json_t *meta = v->metadata ? json_deep_copy(v->metadata) : json_object();
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:o, s:s}", "sandboxID", v->id,
			 "templateID", v->template_id, "clientID", E2B_CLIENT_ID, "startedAt",
			 started, "endAt", ends, "envdVersion", E2B_ENVD_VERSION, "cpuCount",
			 (json_int_t)cpu_count(v), "memoryMB",
			 (json_int_t)(v->info->limits.memory_bytes >> 20), "metadata",
			 meta ? meta : json_object(), "state", "running");
}

json_t *e2b_sandbox_metrics(const struct e2b_sandbox_view *v, uint64_t now_unix_ms)
{
	char ts[32];
	rfc3339(now_unix_ms, ts, sizeof ts);
	uint64_t t0 = v->info->created_unix_ms ? v->info->created_unix_ms : v->created_unix_ms;
	double wall_us = now_unix_ms > t0 ? (double)(now_unix_ms - t0) * 1000.0 : 0.0;
	unsigned cpus = cpu_count(v);
	/* the average since the sandbox started: the engine keeps totals, not a time series */
	double pct = wall_us > 0 ? (double)v->info->cpu_us / (wall_us * cpus) * 100.0 : 0.0;
	if (pct > 100.0)
		pct = 100.0;
	return json_pack("{s:s, s:I, s:I, s:f, s:I, s:I}", "timestamp", ts, "timestampUnix",
			 (json_int_t)(now_unix_ms / 1000), "cpuCount", (json_int_t)cpus,
			 "cpuUsedPct", pct, "memUsed", (json_int_t)v->info->memory_bytes,
			 "memTotal", (json_int_t)v->info->limits.memory_bytes);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* application/x-www-form-urlencoded decoding of p[0..n) into a new string (NULL: bad). */
static char *form_decode(const char *p, size_t n)
{
	char *o = malloc(n + 1);
	size_t k = 0;
	for (size_t i = 0; o && i < n; i++) {
		if (p[i] == '+') {
			o[k++] = ' ';
		} else if (p[i] == '%') {
			int hi = i + 2 < n ? hexval(p[i + 1]) : -1;
			int lo = i + 2 < n ? hexval(p[i + 2]) : -1;
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) { /* bad, or a NUL byte */
				free(o);
				return NULL;
			}
			o[k++] = (char)(hi * 16 + lo);
			i += 2;
		} else {
			o[k++] = p[i];
		}
	}
	if (o)
		o[k] = '\0';
	return o;
}

int e2b_parse_metadata_filter(const char *query, json_t **out, struct cr_err *err)
{
	*out = json_object();
	if (!*out)
		return cr_fail(err, ENOMEM, "metadata filter");
	if (!query || !*query)
		return 0;
	if (strlen(query) > 8192) {
		json_decref(*out);
		*out = NULL;
		return cr_failx(err, EINVAL, "'metadata' filter is too long");
	}
	const char *p = query;
	while (*p) {
		const char *amp = strchrnul(p, '&');
		const char *eq = memchr(p, '=', (size_t)(amp - p));
		if (amp > p) {
			char *k = eq ? form_decode(p, (size_t)(eq - p)) : NULL;
			char *v = eq ? form_decode(eq + 1, (size_t)(amp - eq - 1)) : NULL;
			/* the SDK encodes each part once more before joining: undo that too */
			char *k2 = k ? form_decode(k, strlen(k)) : NULL;
			char *v2 = v ? form_decode(v, strlen(v)) : NULL;
			bool ok = k2 && v2 && *k2 && cr_utf8_valid(k2, strlen(k2)) &&
				  cr_utf8_valid(v2, strlen(v2));
			if (ok)
				json_object_set_new(*out, k2, json_string(v2));
			free(k);
			free(v);
			free(k2);
			free(v2);
			if (!ok) {
				json_decref(*out);
				*out = NULL;
				return cr_failx(err, EINVAL, "'metadata' filter must be key=value pairs "
						"joined by '&'");
			}
		}
		p = *amp ? amp + 1 : amp;
	}
	return 0;
}

bool e2b_metadata_matches(const json_t *filter, const json_t *metadata)
{
	const char *k;
	json_t *want;
	json_object_foreach((json_t *)filter, k, want) {
		json_t *have = metadata ? json_object_get(metadata, k) : NULL;
		if (!have || !json_equal(have, want))
			return false;
	}
	return true;
}

/* -- code interpreter ------------------------------------------------------------------- */

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

static int check_language(const json_t *v, struct cr_err *err)
{
	if (is_null_or_absent(v))
		return 0;
	if (!json_is_string(v))
		return cr_failx(err, EINVAL, "'language' must be a string");
	const char *l = json_string_value(v);
	if (strcmp(l, "python") && strcmp(l, "python3") && strcmp(l, "py"))
		return cr_failx(err, EINVAL, "language '%.40s' is not available: corral runs Python",
				l);
	return 0;
}

int e2b_parse_execute(const char *body, size_t len, struct e2b_exec_req *out,
		      struct cr_err *err)
{
	memset(out, 0, sizeof *out);
	json_t *j = srv_json_object(body, len, 8u << 20, err);
	if (!j)
		return -EINVAL;
	int r = 0;
	json_t *code = json_object_get(j, "code"), *ctx = json_object_get(j, "context_id");
	json_t *lang = json_object_get(j, "language"), *envs = json_object_get(j, "env_vars");
	if (!json_is_string(code)) {
		r = cr_failx(err, EINVAL, "'code' must be a string");
		goto out;
	}
	if (strlen(json_string_value(code)) != json_string_length(code)) {
		r = cr_failx(err, EINVAL, "'code' cannot hold NUL bytes");
		goto out;
	}
	if (json_string_length(code) > ENG_MAX_CODE) {
		r = cr_failx(err, E2BIG, "the code exceeds %u bytes", ENG_MAX_CODE);
		goto out;
	}
	if (!is_null_or_absent(ctx) && !is_null_or_absent(lang)) {
		r = cr_failx(err, EINVAL, "give 'context_id' or 'language', not both");
		goto out;
	}
	if ((r = check_language(lang, err)) < 0)
		goto out;
	if (wants(envs)) {
		r = cr_failx(err, EINVAL, "per-execution 'env_vars' are not supported: give envs "
			     "when the sandbox is created");
		goto out;
	}
	if (!is_null_or_absent(ctx)) {
		if (!json_is_string(ctx) || !context_name_ok(json_string_value(ctx))) {
			r = cr_failx(err, ENOENT, "no such context");
			goto out;
		}
		snprintf(out->context, sizeof out->context, "%s", json_string_value(ctx));
	}
	out->code_len = json_string_length(code);
	out->code = malloc(out->code_len + 1);
	if (!out->code) {
		r = cr_fail(err, ENOMEM, "code");
		goto out;
	}
	memcpy(out->code, json_string_value(code), out->code_len + 1);
out:
	json_decref(j);
	return r;
}

void e2b_exec_req_free(struct e2b_exec_req *q)
{
	free(q->code);
	q->code = NULL;
}

int e2b_parse_context_create(const char *body, size_t len, struct cr_err *err)
{
	json_t *j = len ? srv_json_object(body, len, 64u << 10, err) : json_object();
	if (!j)
		return -EINVAL;
	int r = check_language(json_object_get(j, "language"), err);
	json_t *cwd = json_object_get(j, "cwd");
	if (r == 0 && !is_null_or_absent(cwd) &&
	    (!json_is_string(cwd) || (strcmp(json_string_value(cwd), E2B_HOME) &&
				      strcmp(json_string_value(cwd), E2B_HOME "/"))))
		r = cr_failx(err, EINVAL, "contexts share the sandbox's working directory (%s); "
			     "a context of its own cwd is not supported", E2B_HOME);
	json_decref(j);
	return r;
}

json_t *e2b_context_json(const char *id)
{
	return json_pack("{s:s, s:s, s:s}", "id", id, "language", "python", "cwd", E2B_HOME);
}

/* stdout / stderr -> text: a sequence cut between chunks is carried (up to 3 bytes), bytes
 * that are not UTF-8 become U+FFFD. */
static int stdio_line(struct e2b_events *ev, uint32_t type, const char *data, size_t len,
		      struct cr_buf *out, bool flush)
{
	int s = type == ENG_EV_STDOUT ? 0 : 1;
	size_t carry = ev->carry_n[s];
	char *joined = malloc(carry + len + 1);
	if (!joined)
		return -ENOMEM;
	memcpy(joined, ev->carry[s], carry);
	if (len)
		memcpy(joined + carry, data, len);
	size_t n = carry + len, keep = n;
	ev->carry_n[s] = 0;
	if (!flush) {
		size_t clip = cr_utf8_clip(joined, n);
		if (n - clip <= 3 && clip < n) {
			memcpy(ev->carry[s], joined + clip, n - clip);
			ev->carry_n[s] = n - clip;
			keep = clip;
		}
	}
	int r = 0;
	if (keep) {
		size_t tl;
		char *text = cr_utf8_sanitize(joined, keep, &tl);
		r = text ? put_line(out, json_pack("{s:s, s:s%}", "type", s ? "stderr" : "stdout",
						   "text", text, tl))
			 : -ENOMEM;
		free(text);
	}
	free(joined);
	return r;
}

/* The runner's table form -> E2B's `data`: {column: [values...]}. */
static json_t *table_data(const json_t *t)
{
	json_t *cols = json_object_get(t, "columns"), *rows = json_object_get(t, "rows");
	if (!json_is_array(cols) || !json_is_array(rows))
		return NULL;
	json_t *d = json_object();
	size_t i;
	json_t *c;
	json_array_foreach(cols, i, c) {
		json_t *vals = json_array();
		size_t k;
		json_t *row;
		json_array_foreach(rows, k, row)
			json_array_append(vals, json_is_array(row) && json_array_get(row, i)
							? json_array_get(row, i) : json_null());
		char name[32];
		const char *key = json_is_string(c) ? json_string_value(c) : name;
		if (!json_is_string(c))
			snprintf(name, sizeof name, "%zu", i);
		json_object_set_new(d, key, vals);
	}
	return d;
}

static int result_line(const json_t *e, bool main_result, struct cr_buf *out)
{
	static const struct {
		const char *mime, *key;
	} MIME[] = {
		{"text/plain", "text"},	       {"text/html", "html"},
		{"text/markdown", "markdown"}, {"image/svg+xml", "svg"},
		{"image/png", "png"},	       {"image/jpeg", "jpeg"},
		{"application/pdf", "pdf"},    {"text/latex", "latex"},
		{"application/json", "json"},  {"application/javascript", "javascript"},
	};
	json_t *data = json_object_get(e, "data");
	if (!json_is_object(data))
		return 1;
	json_t *o = json_pack("{s:s, s:b}", "type", "result", "is_main_result", main_result);
	json_t *extra = json_object();
	const char *mime;
	json_t *v;
	json_object_foreach(data, mime, v) {
		const char *key = NULL;
		for (size_t i = 0; i < sizeof MIME / sizeof *MIME && !key; i++)
			if (!strcmp(mime, MIME[i].mime))
				key = MIME[i].key;
		json_t *table = !key && !strcmp(mime, "application/vnd.corral.table+json")
					? table_data(v) : NULL;
		if (key)
			json_object_set(o, key, v);
		else if (table)
			json_object_set_new(o, "data", table);
		else
			json_object_set(extra, mime, v);
	}
	if (json_object_size(extra))
		json_object_set(o, "extra", extra);
	json_decref(extra);
	return put_line(out, o);
}

int e2b_exec_event(struct e2b_events *ev, uint32_t type, const char *data, size_t len,
		   struct cr_buf *out)
{
	if (type == ENG_EV_STDOUT || type == ENG_EV_STDERR)
		return stdio_line(ev, type, data, len, out, false);
	if (type == ENG_EV_KEEPALIVE)
		return put_line(out, json_pack("{s:s}", "type", "keepalive"));
	if (type != ENG_EV_JSON)
		return 1;
	json_error_t je;
	json_t *e = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
	const char *t = e ? json_string_value(json_object_get(e, "type")) : NULL;
	int r = 1;
	if (t && (!strcmp(t, "display") || !strcmp(t, "result"))) {
		r = result_line(e, !strcmp(t, "result"), out);
	} else if (t && !strcmp(t, "error")) {
		const char *name = json_string_value(json_object_get(e, "name"));
		const char *value = json_string_value(json_object_get(e, "value"));
		const char *tb = json_string_value(json_object_get(e, "traceback"));
		ev->error_seen = true;
		r = put_line(out, json_pack("{s:s, s:s, s:s, s:s}", "type", "error", "name",
					    name ? name : "Error", "value", value ? value : "",
					    "traceback", tb ? tb : ""));
	}
	json_decref(e);
	return r;
}

int e2b_exec_final(struct e2b_events *ev, const struct eng_final *f, struct cr_buf *out)
{
	int r = 0;
	for (uint32_t t = ENG_EV_STDOUT; r >= 0 && t <= ENG_EV_STDERR; t++)
		if (ev->carry_n[t - ENG_EV_STDOUT])
			r = stdio_line(ev, t, "", 0, out, true);
	if (r >= 0)
		r = put_line(out, json_pack("{s:s, s:I}", "type", "number_of_executions",
					    "execution_count", (json_int_t)f->cell));
	if (r >= 0 && !ev->error_seen && f->status != ENG_F_OK && f->status != ENG_F_ERROR) {
		const char *name = f->status == ENG_F_TIMEOUT	   ? "TimeoutError"
				 : f->status == ENG_F_MEMORY_LIMIT ? "MemoryError"
								   : "SystemExit";
		char value[160];
		if (f->status == ENG_F_TIMEOUT)
			snprintf(value, sizeof value, "the cell ran past its timeout and was stopped");
		else if (f->status == ENG_F_MEMORY_LIMIT)
			snprintf(value, sizeof value, "the sandbox's memory limit was reached%s",
				 f->session_alive ? "" : "; the session was killed");
		else
			snprintf(value, sizeof value, "the process running the cell ended (exit code "
				 "%d, signal %d)%s", f->exit_code, f->signal,
				 f->session_alive ? "" : "; the session is gone");
		r = put_line(out, json_pack("{s:s, s:s, s:s, s:s}", "type", "error", "name", name,
					    "value", value, "traceback", ""));
	}
	if (r >= 0)
		r = put_line(out, json_pack("{s:s}", "type", "end_of_execution"));
	return r;
}
