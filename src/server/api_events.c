/* server/api_events.c -- see api_json.h: engine events -> NDJSON lines, the aggregated reply,
 * and the public view of a sandbox.  Pure, like api_json.c: what a sandbox prints is untrusted
 * and is only validated and re-encoded here, never interpreted. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/json.h"
#include "core/text.h"
#include "server/api_json.h"

/* -- events ----------------------------------------------------------------------------- */

static const char *const RUNNER_EVENTS[] = {"display", "result", "error", "context", NULL};

static int put_json_line(struct cr_buf *out, json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!s)
		return -ENOMEM;
	int r = cr_buf_puts(out, s);
	free(s);
	return r < 0 ? r : cr_buf_append(out, "\n", 1);
}

/* stdout / stderr: UTF-8 text, or base64 when it is not text. */
static int stdio_line(uint32_t type, const char *p, size_t n, struct cr_buf *out)
{
	json_t *o = json_object();
	if (!o)
		return -ENOMEM;
	json_object_set_new(o, "type", json_string(type == ENG_EV_STDOUT ? "stdout" : "stderr"));
	if (cr_utf8_valid(p, n)) {
		json_object_set_new(o, "text", json_stringn(p, n));
	} else {
		size_t bl;
		char *b = cr_base64_encode(p, n, &bl);
		if (!b) {
			json_decref(o);
			return -ENOMEM;
		}
		json_object_set_new(o, "text", json_stringn(b, bl));
		json_object_set_new(o, "encoding", json_string("base64"));
		free(b);
	}
	return put_json_line(out, o);
}

/* Joins the carried bytes of a stream with the new chunk, keeps an incomplete trailing UTF-8
 * sequence for next time, and emits the rest. */
static int stdio_chunk(struct srv_events *ev, uint32_t type, const char *data, size_t len,
		       struct cr_buf *out)
{
	int s = type == ENG_EV_STDOUT ? 0 : 1;
	size_t carry = ev->carry_n[s];
	char *joined = NULL;
	const char *p = data;
	size_t n = len;
	if (carry) {
		joined = malloc(carry + len + 1);
		if (!joined)
			return -ENOMEM;
		memcpy(joined, ev->carry[s], carry);
		memcpy(joined + carry, data, len);
		p = joined;
		n = carry + len;
		ev->carry_n[s] = 0;
	}
	size_t keep = n;
	if (!cr_utf8_valid(p, n)) {
		size_t clip = cr_utf8_clip(p, n);
		/* only a short incomplete tail of otherwise valid text is worth carrying */
		if (n - clip <= 3 && n - clip > 0 && cr_utf8_valid(p, clip))
			keep = clip;
	}
	int r = 0;
	if (keep)
		r = stdio_line(type, p, keep, out);
	if (r == 0 && keep < n) {
		memcpy(ev->carry[s], p + keep, n - keep);
		ev->carry_n[s] = n - keep;
	}
	free(joined);
	return r;
}

int srv_events_flush(struct srv_events *ev, struct cr_buf *out)
{
	int r = 0;
	for (int s = 0; s < 2 && r == 0; s++) {
		if (ev->carry_n[s])
			r = stdio_line(s == 0 ? ENG_EV_STDOUT : ENG_EV_STDERR, ev->carry[s],
				       ev->carry_n[s], out);
		ev->carry_n[s] = 0;
	}
	return r;
}

/* Parses a session event; NULL when it is malformed or not one of the runner's types. */
static json_t *runner_event(const char *data, size_t len, const char **type)
{
	json_t *j = cr_json_parse(data, len, SRV_EVENT_MAX, NULL);
	const char *t = json_string_value(json_object_get(j, "type"));
	bool ok = false;
	for (size_t i = 0; t && RUNNER_EVENTS[i] && !ok; i++)
		ok = !strcmp(t, RUNNER_EVENTS[i]);
	if (!ok) {
		json_decref(j);
		return NULL;
	}
	*type = t;
	return j;
}

int srv_event_line(struct srv_events *ev, uint32_t type, const char *data, size_t len,
		   struct cr_buf *out)
{
	if (!data) /* an empty frame's payload */
		data = "";
	switch (type) {
	case ENG_EV_STDOUT:
	case ENG_EV_STDERR:
		return stdio_chunk(ev, type, data, len, out);
	case ENG_EV_KEEPALIVE:
		return cr_buf_puts(out, "{\"type\":\"keepalive\"}\n");
	case ENG_EV_JSON: {
		const char *t;
		json_t *j = runner_event(data, len, &t);
		if (!j)
			return 1;
		/* one line as it came (jansson accepted it, so it is one JSON value): pass it on */
		if (!memchr(data, '\n', len) && !memchr(data, '\r', len)) {
			json_decref(j);
			int r = cr_buf_append(out, data, len);
			return r < 0 ? r : cr_buf_append(out, "\n", 1);
		}
		return put_json_line(out, j);
	}
	default:
		return 1;
	}
}

json_t *srv_final_json(const struct eng_final *f)
{
	json_t *o = json_pack("{s:s, s:s, s:f, s:f, s:I, s:b, s:I, s:I, s:I, s:I}", "type", "final",
			      "status", eng_final_status_name(f->status), "duration_ms",
			      (double)f->duration_us / 1000.0, "cpu_ms", (double)f->cpu_us / 1000.0,
			      "peak_memory_bytes", (json_int_t)f->peak_memory_bytes, "session_alive",
			      f->session_alive != 0, "cell", (json_int_t)f->cell, "stdout_bytes",
			      (json_int_t)f->stdout_bytes, "stderr_bytes", (json_int_t)f->stderr_bytes,
			      "dropped_bytes", (json_int_t)f->dropped_bytes);
	json_t *hit = o ? json_array() : NULL;
	if (hit) {
		if (f->limits_hit & ENG_HIT_MEMORY)
			json_array_append_new(hit, json_string("memory"));
		if (f->limits_hit & ENG_HIT_PIDS)
			json_array_append_new(hit, json_string("pids"));
		if (f->limits_hit & ENG_HIT_OUTPUT)
			json_array_append_new(hit, json_string("output"));
		json_object_set_new(o, "limits_hit", hit);
	}
	if (o && f->status == ENG_F_KILLED) {
		json_object_set_new(o, "exit_code",
				    f->exit_code >= 0 ? json_integer(f->exit_code) : json_null());
		json_object_set_new(o, "signal", f->signal ? json_integer(f->signal) : json_null());
	}
	return o;
}

/* -- aggregation ------------------------------------------------------------------------- */

void srv_agg_init(struct srv_agg *a)
{
	memset(a, 0, sizeof *a);
	cr_buf_init(&a->out, SRV_AGG_STREAM_MAX);
	cr_buf_init(&a->err, SRV_AGG_STREAM_MAX);
	a->results = json_array();
}

void srv_agg_free(struct srv_agg *a)
{
	cr_buf_free(&a->out);
	cr_buf_free(&a->err);
	json_decref(a->results);
	json_decref(a->error);
	a->results = a->error = NULL;
}

int srv_agg_add(struct srv_agg *a, uint32_t type, const char *data, size_t len)
{
	if (!data)
		data = "";
	if (type == ENG_EV_STDOUT || type == ENG_EV_STDERR) {
		cr_buf_append_trunc(type == ENG_EV_STDOUT ? &a->out : &a->err, data, len);
		return 0;
	}
	if (type != ENG_EV_JSON)
		return 0;
	const char *t;
	json_t *j = runner_event(data, len, &t);
	if (!j)
		return 1;
	if (!strcmp(t, "error")) {
		json_decref(a->error);
		a->error = j;
		return 0;
	}
	if (strcmp(t, "display") && strcmp(t, "result")) {
		json_decref(j);
		return 0;
	}
	if (!a->results || a->results_bytes + len > SRV_AGG_RESULTS_MAX) {
		a->results_dropped++;
		json_decref(j);
		return 1;
	}
	a->results_bytes += len;
	return json_array_append_new(a->results, j) == 0 ? 0 : -ENOMEM;
}

/* Text as a string (UTF-8, cut on a character boundary) or base64. */
static void set_text(json_t *o, const char *key, const char *enc_key, const struct cr_buf *b)
{
	const char *p = b->data ? b->data : "";
	size_t n = b->len;
	if (cr_utf8_valid(p, n)) {
		json_object_set_new(o, key, json_stringn(p, n));
		return;
	}
	size_t clip = cr_utf8_clip(p, n);
	if (n - clip <= 3 && cr_utf8_valid(p, clip)) { /* only cut off mid-character */
		json_object_set_new(o, key, json_stringn(p, clip));
		return;
	}
	cr_json_set_bytes(o, key, enc_key, p, n);
}

json_t *srv_agg_finish(struct srv_agg *a, const struct eng_final *f)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	set_text(o, "stdout", "stdout_encoding", &a->out);
	set_text(o, "stderr", "stderr_encoding", &a->err);
	json_object_set(o, "results", a->results ? a->results : json_array());
	json_object_set(o, "error", a->error ? a->error : json_null());
	if (a->out.dropped || a->err.dropped || a->results_dropped)
		json_object_set_new(o, "truncated",
				    json_pack("{s:I, s:I, s:I}", "stdout_bytes",
					      (json_int_t)a->out.dropped, "stderr_bytes",
					      (json_int_t)a->err.dropped, "results",
					      (json_int_t)a->results_dropped));
	json_object_set_new(o, "final", srv_final_json(f));
	return o;
}

/* -- views ------------------------------------------------------------------------------ */

void srv_rfc3339(uint64_t unix_ms, char *out, size_t n)
{
	time_t t = (time_t)(unix_ms / 1000);
	struct tm tm;
	if (!gmtime_r(&t, &tm)) {
		snprintf(out, n, "1970-01-01T00:00:00.000Z");
		return;
	}
	char base[24];
	strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, n, "%s.%03uZ", base, (unsigned)(unix_ms % 1000));
}

const char *srv_mode_name(uint32_t mode)
{
	return mode == ENG_STATELESS ? "stateless" : "stateful";
}

const char *srv_state_name(uint32_t state)
{
	switch (state) {
	case ENG_S_STARTING: return "starting";
	case ENG_S_IDLE: return "idle";
	case ENG_S_BUSY: return "busy";
	default: return "dead";
	}
}

json_t *srv_sandbox_json(const char *id, const struct eng_session_info *info,
			 const json_t *metadata)
{
	char created[32], expires[32], used[32];
	srv_rfc3339(info->created_unix_ms, created, sizeof created);
	srv_rfc3339(info->expires_unix_ms, expires, sizeof expires);
	srv_rfc3339(info->last_used_unix_ms, used, sizeof used);
	const struct eng_limits *l = &info->limits;
	json_t *limits = json_pack("{s:I, s:o, s:I, s:f, s:I, s:I, s:I}", "memory",
				   (json_int_t)l->memory_bytes, "cpus",
				   l->cpus_milli ? json_real(l->cpus_milli / 1000.0) : json_null(),
				   "pids", (json_int_t)l->pids, "cell_timeout_s",
				   l->cell_timeout_ms / 1000.0, "max_cells", (json_int_t)l->max_cells,
				   "idle_timeout_s", (json_int_t)l->idle_timeout_s, "tmp",
				   (json_int_t)l->tmp_bytes);
	json_t *usage = json_pack("{s:I, s:f, s:I, s:I}", "cells", (json_int_t)info->cells,
				  "cpu_ms", info->cpu_us / 1000.0, "memory_bytes",
				  (json_int_t)info->memory_bytes, "peak_memory_bytes",
				  (json_int_t)info->peak_memory_bytes);
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o}", "id", id, "mode",
			      srv_mode_name(info->mode), "state", srv_state_name(info->state),
			      "created_at", created, "expires_at", expires, "last_used_at", used,
			      "limits", limits ? limits : json_null(), "usage",
			      usage ? usage : json_null());
	if (o)
		json_object_set_new(o, "metadata",
				    metadata ? json_deep_copy(metadata) : json_object());
	return o;
}
