/* fuzz_e2b_json.c -- the E2B surface's parsing and encoding (server/e2b_json.h) over arbitrary
 * bytes: bodies, Connect envelopes and query strings come from the network, events from inside
 * a sandbox.  Input: the first byte selects the target, the rest is its input.
 *   0 create body   1 timeout body   2 metadata filter   3 Connect envelope   4 Process/Start
 *   5 process selector   6 a path (query or file name)   7 a filesystem message (path, depth)
 *   8 execute body   9 context create   10 session events -> interpreter NDJSON
 *   11 session events -> process stream envelopes
 * Invariants: a parse that succeeds yields values inside the documented caps (a known
 * template, an env block the engine accepts, a command payload whose strings match its
 * header, an absolute path); every NDJSON line is one JSON object with a type, the reply
 * always ends with end_of_execution and nothing from a sandbox can produce that line; every
 * envelope is well-framed JSON. */
#include <arpa/inet.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/api_json.h"
#include "server/e2b_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *cstr(const char *p, size_t n)
{
	char *s = malloc(n + 1);
	if (s) {
		memcpy(s, p, n);
		s[n] = '\0';
	}
	return s;
}

static void check_env(const char *b, size_t n)
{
	size_t i = 0;
	while (i < n && b[i]) {
		if (b[i] == '=')
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

static void check_payload(const struct cr_buf *p)
{
	struct eng_cmd_hdr h;
	if (p->len < sizeof h)
		abort();
	memcpy(&h, p->data, sizeof h);
	if (h.argc < 1 || h.argc > ENG_CMD_ARGS_MAX || h.envc > ENG_CMD_ENV_MAX)
		abort();
	size_t strings = 0;
	for (size_t i = sizeof h; i < p->len; i++)
		strings += p->data[i] == '\0';
	if (strings != 1 + h.argc + h.envc || p->data[p->len - 1] != '\0')
		abort();
}

static void check_path(const char *out)
{
	size_t l = strlen(out);
	if (out[0] != '/' || l >= ENG_PATH_MAX || (l > 1 && out[l - 1] == '/'))
		abort();
}

/* Every line one JSON object with a type; returns the last line's type (static storage). */
static const char *check_lines(const struct cr_buf *b, bool allow_end)
{
	static char last[64];
	last[0] = '\0';
	if (!b->data)
		return last;
	const char *p = b->data, *end = b->data + b->len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			abort();
		json_t *j = json_loadb(p, (size_t)(nl - p), JSON_ALLOW_NUL, NULL);
		const char *t = json_string_value(json_object_get(j, "type"));
		if (!j || !t || (!allow_end && !strcmp(t, "end_of_execution")))
			abort();
		snprintf(last, sizeof last, "%s", t);
		json_decref(j);
		p = nl + 1;
	}
	return last;
}

static void check_envelopes(const struct cr_buf *b)
{
	size_t i = 0;
	while (b->data && i < b->len) {
		uint32_t n;
		if (b->len - i < 5)
			abort();
		memcpy(&n, b->data + i + 1, 4);
		n = ntohl(n);
		if (n > b->len - i - 5)
			abort();
		json_t *j = json_loadb(b->data + i + 5, n, 0, NULL);
		if (!json_is_object(j))
			abort();
		json_decref(j);
		i += 5 + n;
	}
}

static void events(const uint8_t *d, size_t n, bool process)
{
	static const uint32_t TYPES[] = {ENG_EV_STDOUT, ENG_EV_STDERR, ENG_EV_JSON, ENG_EV_KEEPALIVE};
	struct e2b_events ev = {0};
	struct cr_buf out;
	cr_buf_init(&out, 1u << 24);
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
		if (process && type != ENG_EV_JSON)
			e2b_process_data_event(&out, type == ENG_EV_STDERR, frame, len);
		else if (!process)
			e2b_exec_event(&ev, type, frame, len, &out);
		free(frame);
		d += len;
		n -= len;
	}
	struct eng_final f = {.status = n % 5, .session_alive = 1, .exit_code = (int)(n % 3) - 1,
			      .signal = (int)(n % 16)};
	if (process) {
		e2b_process_end_event(&out, &f);
		e2b_end_stream(&out, n % 2 ? NULL : "internal", "x");
		check_envelopes(&out);
	} else {
		check_lines(&out, false);
		if (e2b_exec_final(&ev, &f, &out) == 0 && strcmp(check_lines(&out, true),
								 "end_of_execution"))
			abort();
	}
	cr_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const char *body = (const char *)data + 1;
	size_t n = size - 1;
	struct cr_err err = {0};
	switch (data[0] % 12) {
	case 0: {
		struct e2b_create_req q;
		if (e2b_parse_create(body, n, &q, &err) == 0) {
			if (!json_is_object(q.metadata) || q.timeout_s > SRV_TIMEOUT_MAX_S ||
			    !q.template_id[0])
				abort();
			check_env(q.env, sizeof q.env);
			e2b_create_req_free(&q);
		} else if (!err.msg[0]) {
			abort(); /* every refusal says why */
		}
		break;
	}
	case 1: {
		bool present;
		uint32_t t = 0;
		if (e2b_parse_timeout(body, n, &present, &t, &err) == 0 && present &&
		    (t == 0 || t > SRV_TIMEOUT_MAX_S))
			abort();
		break;
	}
	case 2: {
		char *s = cstr(body, n);
		json_t *f = NULL;
		if (s && e2b_parse_metadata_filter(s, &f, &err) == 0) {
			if (!json_is_object(f))
				abort();
			e2b_metadata_matches(f, f);
			json_decref(f);
		}
		free(s);
		break;
	}
	case 3: {
		const char *m;
		size_t ml;
		if (e2b_envelope_unwrap(body, n, &m, &ml, &err) == 0 && (m != body + 5 || ml != n - 5))
			abort();
		break;
	}
	case 4: {
		struct cr_buf p;
		cr_buf_init(&p, ENG_MAX_CODE + 1);
		json_t *config = NULL;
		char tag[64];
		if (e2b_parse_process_start(body, n, &p, &config, tag, sizeof tag, &err) == 0) {
			check_payload(&p);
			if (!json_is_object(config))
				abort();
		}
		json_decref(config);
		cr_buf_free(&p);
		break;
	}
	case 5: {
		uint32_t pid;
		char tag[64];
		int sig;
		if (e2b_parse_process_selector(body, n, &pid, tag, sizeof tag, &sig, &err) == 0 &&
		    ((!pid && !tag[0]) || (sig != 9 && sig != 15)))
			abort();
		break;
	}
	case 6: {
		char *s = cstr(body, n), out[ENG_PATH_MAX];
		if (s && e2b_session_path(s, out, sizeof out, &err) == 0)
			check_path(out);
		free(s);
		break;
	}
	case 7: {
		char out[ENG_PATH_MAX];
		unsigned depth;
		if (e2b_parse_path(body, n, "path", out, sizeof out, &err) == 0)
			check_path(out);
		if (e2b_parse_depth(body, n, &depth, &err) == 0 && (depth < 1 || depth > 8))
			abort();
		break;
	}
	case 8: {
		struct e2b_exec_req q;
		if (e2b_parse_execute(body, n, &q, &err) == 0) {
			if (!q.code || q.code_len > ENG_MAX_CODE || strlen(q.code) != q.code_len ||
			    strchr(q.context, '/'))
				abort();
			e2b_exec_req_free(&q);
		}
		break;
	}
	case 9:
		e2b_parse_context_create(body, n, &err);
		break;
	case 10:
	case 11:
		events((const uint8_t *)body, n, data[0] % 12 == 11);
		break;
	}
	return 0;
}
