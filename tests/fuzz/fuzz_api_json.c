/* fuzz_api_json.c -- the server's request parsing and JSON handling (server/api_json.h) over
 * arbitrary bytes: request bodies come from the network, events from inside a sandbox.
 * Input: the first byte selects the target, the rest is its input.
 *   0 create body   1 execute body   2 timeout body   3 a URL file path
 *   4 session events (the rest split into frames: 1 type byte, 1 length byte, bytes)
 *   5 the same events aggregated
 * Invariants: a parse that succeeds yields values inside the documented caps (an env block
 * the engine accepts, code within ENG_MAX_CODE, a valid context name, an absolute path with no
 * "." or ".." component); every NDJSON line is exactly one JSON object on one line, and no
 * session event can produce a "final" or "keepalive" line. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/api_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The engine's own check of an environment block ("K=V\0...\0\0" within n bytes). */
static void check_env(const char *b, size_t n)
{
	size_t i = 0;
	while (i < n && b[i]) {
		if (b[i] == '=' || (b[i] >= '0' && b[i] <= '9'))
			abort();
		while (i < n && b[i] && b[i] != '=')
			i++;
		if (i >= n || b[i] != '=')
			abort();
		while (i < n && b[i])
			i++;
		if (i >= n)
			abort();
		i++;
	}
	if (i >= n)
		abort();
}

static void check_lines(const struct cr_buf *b)
{
	if (!b->data)
		return;
	const char *p = b->data, *end = b->data + b->len;
	while (p && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			abort(); /* every line is terminated */
		/* "\u0000" is valid JSON (a NUL byte a cell printed): allow it */
		json_t *j = json_loadb(p, (size_t)(nl - p), JSON_ALLOW_NUL, NULL);
		if (!j || !json_is_object(j))
			abort();
		const char *t = json_string_value(json_object_get(j, "type"));
		if (!t)
			abort();
		json_decref(j);
		p = nl + 1;
	}
}

static void events(const uint8_t *d, size_t n, bool aggregate)
{
	static const uint32_t TYPES[] = {ENG_EV_STDOUT, ENG_EV_STDERR, ENG_EV_JSON, ENG_EV_KEEPALIVE};
	struct srv_events ev = {0};
	struct srv_agg agg;
	struct cr_buf out;
	cr_buf_init(&out, 1u << 24);
	srv_agg_init(&agg);
	while (n >= 2) {
		uint32_t type = TYPES[d[0] & 3];
		size_t len = d[1];
		d += 2;
		n -= 2;
		if (len > n)
			len = n;
		char *frame = malloc(len ? len : 1); /* exact size: reads past it are caught */
		if (!frame)
			break;
		memcpy(frame, d, len);
		if (aggregate) {
			srv_agg_add(&agg, type, frame, len);
		} else {
			size_t before = out.len;
			int r = srv_event_line(&ev, type, frame, len, &out);
			if (type == ENG_EV_JSON && r == 0) {
				/* a session event that passed is one of the runner's types */
				json_t *j = json_loadb(out.data + before, out.len - before, 0, NULL);
				const char *t = json_string_value(json_object_get(j, "type"));
				if (!t || !strcmp(t, "final") || !strcmp(t, "keepalive") ||
				    !strcmp(t, "stdout") || !strcmp(t, "stderr"))
					abort();
				json_decref(j);
			}
		}
		free(frame);
		d += len;
		n -= len;
	}
	struct eng_final f = {.status = ENG_F_OK, .session_alive = 1};
	if (aggregate) {
		json_t *j = srv_agg_finish(&agg, &f);
		if (!j)
			abort();
		char *s = json_dumps(j, JSON_COMPACT);
		json_decref(j);
		if (!s)
			abort();
		free(s);
	} else {
		srv_events_flush(&ev, &out);
		check_lines(&out);
	}
	srv_agg_free(&agg);
	cr_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const char *body = (const char *)data + 1;
	size_t n = size - 1;
	struct cr_err err = {0};
	switch (data[0] % 6) {
	case 0: {
		struct srv_create_req q;
		if (srv_parse_create(body, n, &q, &err) == 0) {
			if (!json_is_object(q.metadata) || q.mode > ENG_STATELESS ||
			    q.timeout_s > SRV_TIMEOUT_MAX_S || json_object_size(q.metadata) > SRV_META_MAX)
				abort();
			check_env(q.env, sizeof q.env);
			srv_create_req_free(&q);
		} else if (!err.msg[0]) {
			abort(); /* every refusal says why */
		}
		break;
	}
	case 1: {
		struct srv_exec_req q;
		if (srv_parse_execute(body, n, &q, &err) == 0) {
			if (!q.code || q.code_len > ENG_MAX_CODE || strlen(q.code) != q.code_len ||
			    !q.context[0] || strchr(q.context, '/'))
				abort();
			srv_exec_req_free(&q);
		}
		break;
	}
	case 2: {
		uint32_t t = 0;
		if (srv_parse_timeout(body, n, &t, &err) == 0 && (t == 0 || t > SRV_TIMEOUT_MAX_S))
			abort();
		break;
	}
	case 3: {
		char *s = malloc(n + 1);
		char out[ENG_PATH_MAX];
		if (!s)
			return 0;
		memcpy(s, body, n);
		s[n] = '\0';
		if (srv_session_path(s, out, sizeof out, &err) == 0) {
			if (out[0] != '/' || strstr(out, "/../") || strstr(out, "/./") ||
			    strstr(out, "//") || strlen(out) >= ENG_PATH_MAX)
				abort();
			size_t l = strlen(out);
			if ((l >= 3 && !strcmp(out + l - 3, "/..")) || (l >= 2 && !strcmp(out + l - 2, "/.")))
				abort();
		}
		free(s);
		break;
	}
	case 4:
		events((const uint8_t *)body, n, false);
		break;
	default:
		events((const uint8_t *)body, n, true);
		break;
	}
	return 0;
}
