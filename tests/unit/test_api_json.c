/* tests/unit/test_api_json.c -- the server's pure JSON <-> struct mapping (server/api_json.h):
 * types, ranges, the unknown-fields policy, limits as numbers or "512M" strings, env
 * validation, metadata caps, file paths, the errno table, and events -> NDJSON lines. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/api_json.h"

static int create(const char *body, struct srv_create_req *q, struct cr_err *err)
{
	memset(err, 0, sizeof *err);
	return srv_parse_create(body, strlen(body), q, err);
}

static void test_create_defaults(void **state)
{
	(void)state;
	struct srv_create_req q;
	struct cr_err err;
	assert_int_equal(create("{}", &q, &err), 0);
	assert_int_equal(q.mode, ENG_STATEFUL);
	assert_int_equal(q.timeout_s, 0);
	assert_int_equal(q.limits.memory_bytes, 0);
	assert_int_equal(q.env[0], '\0');
	assert_true(json_is_object(q.metadata));
	assert_int_equal(json_object_size(q.metadata), 0);
	srv_create_req_free(&q);
	/* an empty body is "all defaults" too */
	assert_int_equal(srv_parse_create("", 0, &q, &err), 0);
	srv_create_req_free(&q);
}

static void test_create_full(void **state)
{
	(void)state;
	struct srv_create_req q;
	struct cr_err err;
	assert_int_equal(create("{\"mode\": \"stateless\", \"timeout_s\": 120, \"limits\": "
				"{\"memory\": \"512M\", \"cpus\": 1.5, \"pids\": 32, "
				"\"cell_timeout_s\": 2.5, \"max_cells\": 10, \"idle_timeout_s\": 60},"
				" \"env\": {\"A\": \"1\", \"B_2\": \"x=y\"}, "
				"\"metadata\": {\"user\": \"ana\"}}", &q, &err), 0);
	assert_int_equal(q.mode, ENG_STATELESS);
	assert_int_equal(q.timeout_s, 120);
	assert_int_equal(q.limits.memory_bytes, 512ULL << 20);
	assert_int_equal(q.limits.cpus_milli, 1500);
	assert_int_equal(q.limits.pids, 32);
	assert_int_equal(q.limits.cell_timeout_ms, 2500);
	assert_int_equal(q.limits.max_cells, 10);
	assert_int_equal(q.limits.idle_timeout_s, 60);
	assert_string_equal(q.env, "A=1");
	assert_string_equal(q.env + 4, "B_2=x=y");
	assert_int_equal(q.env[4 + 8], '\0'); /* the block ends with an empty string */
	assert_string_equal(json_string_value(json_object_get(q.metadata, "user")), "ana");
	srv_create_req_free(&q);
	/* memory as a plain number of bytes; durations as strings */
	assert_int_equal(create("{\"limits\": {\"memory\": 67108864, \"cell_timeout_s\": \"1.5s\"}}",
				&q, &err), 0);
	assert_int_equal(q.limits.memory_bytes, 64ULL << 20);
	assert_int_equal(q.limits.cell_timeout_ms, 1500);
	srv_create_req_free(&q);
}

static void test_create_rejects(void **state)
{
	(void)state;
	const char *bad[] = {
		"[]", "\"x\"", "{", "{} {}", "{\"mode\": 1}", "{\"mode\": \"fast\"}",
		"{\"timeout_s\": -1}", "{\"timeout_s\": 0}", "{\"timeout_s\": 1.5}",
		"{\"timeout_s\": \"10\"}", "{\"timeout_s\": 99999999999}",
		"{\"timout_s\": 10}",                            /* unknown field */
		"{\"limits\": {\"memroy\": \"1G\"}}",            /* unknown field in limits */
		"{\"limits\": []}", "{\"limits\": {\"memory\": \"lots\"}}",
		"{\"limits\": {\"memory\": \"1M\"}}",            /* below 16M */
		"{\"limits\": {\"memory\": -5}}", "{\"limits\": {\"cpus\": 0}}",
		"{\"limits\": {\"cpus\": \"many\"}}", "{\"limits\": {\"pids\": 2}}",
		"{\"limits\": {\"pids\": true}}", "{\"limits\": {\"cell_timeout_s\": 0}}",
		"{\"limits\": {\"cell_timeout_s\": 1e9}}", "{\"limits\": {\"max_cells\": -1}}",
		"{\"env\": []}", "{\"env\": {\"1A\": \"x\"}}", "{\"env\": {\"A-B\": \"x\"}}",
		"{\"env\": {\"\": \"x\"}}", "{\"env\": {\"A\": 1}}", "{\"env\": {\"A\": null}}",
		"{\"metadata\": []}", "{\"metadata\": {\"k\": 1}}", "{\"metadata\": {\"\": \"v\"}}",
		"{\"mode\": \"stateful\", \"mode\": \"stateless\"}", /* duplicate keys */
		"{\"env\": {\"A\": \"a\\u0000b\"}}",                 /* NUL (jansson refuses) */
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		struct srv_create_req q;
		struct cr_err err;
		int r = create(bad[i], &q, &err);
		if (r == 0)
			fail_msg("accepted: %s", bad[i]);
		assert_true(strlen(err.msg) > 0);
		assert_null(q.metadata);
	}
	struct srv_create_req q;
	struct cr_err err;
	assert_true(create("{\"timout_s\": 10}", &q, &err) < 0);
	assert_non_null(strstr(err.msg, "timout_s"));
}

static void test_create_caps(void **state)
{
	(void)state;
	struct srv_create_req q;
	struct cr_err err;
	char body[16384];
	/* metadata: 32 keys pass, 33 do not */
	for (int n = 32; n <= 33; n++) {
		int o = snprintf(body, sizeof body, "{\"metadata\": {");
		for (int i = 0; i < n; i++)
			o += snprintf(body + o, sizeof body - (size_t)o, "%s\"k%d\": \"v\"", i ? "," : "", i);
		snprintf(body + o, sizeof body - (size_t)o, "}}");
		assert_int_equal(create(body, &q, &err) == 0, n == 32);
		srv_create_req_free(&q);
	}
	/* a metadata value of 513 bytes is refused */
	char big[600];
	memset(big, 'x', 513);
	big[513] = '\0';
	snprintf(body, sizeof body, "{\"metadata\": {\"k\": \"%s\"}}", big);
	assert_true(create(body, &q, &err) < 0);
	/* env: the whole block must fit in the engine's 4096 bytes */
	memset(big, 'x', 500);
	big[500] = '\0';
	int o = snprintf(body, sizeof body, "{\"env\": {");
	for (int i = 0; i < 9; i++)
		o += snprintf(body + o, sizeof body - (size_t)o, "%s\"V%d\": \"%s\"", i ? "," : "", i, big);
	snprintf(body + o, sizeof body - (size_t)o, "}}");
	assert_true(create(body, &q, &err) < 0);
	assert_non_null(strstr(err.msg, "env"));
	/* 65 variables are too many */
	o = snprintf(body, sizeof body, "{\"env\": {");
	for (int i = 0; i < 65; i++)
		o += snprintf(body + o, sizeof body - (size_t)o, "%s\"V%d\": \"1\"", i ? "," : "", i);
	snprintf(body + o, sizeof body - (size_t)o, "}}");
	assert_true(create(body, &q, &err) < 0);
}

static void test_execute(void **state)
{
	(void)state;
	struct srv_exec_req q;
	struct cr_err err = {0};
	const char *ok = "{\"code\": \"print(1)\\n\", \"context\": \"ctx-1\", \"timeout_s\": 2}";
	assert_int_equal(srv_parse_execute(ok, strlen(ok), &q, &err), 0);
	assert_string_equal(q.code, "print(1)\n");
	assert_int_equal(q.code_len, 9);
	assert_string_equal(q.context, "ctx-1");
	assert_int_equal(q.timeout_ms, 2000);
	assert_false(q.svg);
	srv_exec_req_free(&q);
	const char *plain = "{\"code\": \"\"}";
	assert_int_equal(srv_parse_execute(plain, strlen(plain), &q, &err), 0);
	assert_string_equal(q.context, "default");
	assert_int_equal(q.timeout_ms, 0);
	srv_exec_req_free(&q);
	const char *bad[] = {"", "{}", "{\"code\": 1}", "{\"code\": null}", "[\"print(1)\"]",
			     "{\"code\": \"x\", \"context\": \"\"}",
			     "{\"code\": \"x\", \"context\": \"a/b\"}",
			     "{\"code\": \"x\", \"context\": 5}", "{\"code\": \"x\", \"timeout_s\": 0}",
			     "{\"code\": \"x\", \"timeout_s\": -1}", "{\"code\": \"x\", \"svg\": 1}",
			     "{\"code\": \"x\", \"cod\": \"y\"}", "{\"code\": \"\\ud800\"}", "nul"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		memset(&err, 0, sizeof err);
		if (srv_parse_execute(bad[i], strlen(bad[i]), &q, &err) == 0)
			fail_msg("accepted: %s", bad[i]);
		assert_null(q.code);
	}
	/* code over 1 MiB is too large (413), not malformed */
	size_t n = ENG_MAX_CODE + 1;
	char *body = malloc(n + 32);
	int o = snprintf(body, n + 32, "{\"code\": \"");
	memset(body + o, 'a', n);
	snprintf(body + o + n, (size_t)(32 - o), "\"}"); /* what is left of the n + 32 */
	assert_int_equal(srv_parse_execute(body, strlen(body), &q, &err), -E2BIG);
	free(body);
}

static void test_timeout(void **state)
{
	(void)state;
	uint32_t t = 0;
	struct cr_err err = {0};
	assert_int_equal(srv_parse_timeout("{\"timeout_s\": 30}", 17, &t, &err), 0);
	assert_int_equal(t, 30);
	const char *bad[] = {"{}", "{\"timeout_s\": 0}", "{\"timeout_s\": 604801}",
			     "{\"timeout_s\": \"30\"}", "{\"timeout\": 30}", "30"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		assert_true(srv_parse_timeout(bad[i], strlen(bad[i]), &t, &err) < 0);
}

static void test_sizes(void **state)
{
	(void)state;
	uint64_t v;
	struct cr_err err = {0};
	json_t *j = json_string("1.5G");
	assert_int_equal(srv_json_size(j, "m", &v, &err), 0);
	assert_int_equal(v, 3ULL << 29);
	json_decref(j);
	j = json_real(1024.0);
	assert_int_equal(srv_json_size(j, "m", &v, &err), 0);
	assert_int_equal(v, 1024);
	json_decref(j);
	j = json_real(1.5);
	assert_true(srv_json_size(j, "m", &v, &err) < 0);
	json_decref(j);
	j = json_true();
	assert_true(srv_json_size(j, "m", &v, &err) < 0);
	json_decref(j);
}

static void test_paths(void **state)
{
	(void)state;
	char out[ENG_PATH_MAX];
	struct cr_err err = {0};
	assert_int_equal(srv_session_path("home/user/a.csv", out, sizeof out, &err), 0);
	assert_string_equal(out, "/home/user/a.csv");
	const char *bad[] = {"", "/etc/passwd", "..", "../etc", "home/../../etc", "home//x",
			     "home/./x", "home/x/", "."};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		if (srv_session_path(bad[i], out, sizeof out, &err) == 0)
			fail_msg("accepted path: %s", bad[i]);
	char longp[2048];
	memset(longp, 'a', sizeof longp - 1);
	longp[sizeof longp - 1] = '\0';
	assert_true(srv_session_path(longp, out, sizeof out, &err) < 0);
}

static void test_errno_table(void **state)
{
	(void)state;
	const char *code;
	assert_int_equal(srv_status_for_errno(-EINVAL, &code), 400);
	assert_int_equal(srv_status_for_errno(-ENOENT, &code), 404);
	assert_string_equal(code, "not_found");
	assert_int_equal(srv_status_for_errno(-EBUSY, &code), 409);
	assert_int_equal(srv_status_for_errno(-EAGAIN, &code), 429);
	assert_int_equal(srv_status_for_errno(-EFBIG, &code), 413);
	assert_int_equal(srv_status_for_errno(-EACCES, &code), 403);
	assert_int_equal(srv_status_for_errno(-ELOOP, &code), 403);
	assert_int_equal(srv_status_for_errno(-ECONNREFUSED, &code), 503);
	assert_int_equal(srv_status_for_errno(-EOWNERDEAD, &code), 500);
	assert_string_equal(code, "internal");
}

static json_t *one_line(struct cr_buf *b)
{
	assert_true(b->len > 0);
	assert_int_equal(b->data[b->len - 1], '\n');
	assert_null(memchr(b->data, '\n', b->len - 1));
	json_t *j = json_loadb(b->data, b->len, 0, NULL);
	assert_non_null(j);
	cr_buf_reset(b);
	return j;
}

static void test_events(void **state)
{
	(void)state;
	struct srv_events ev = {0};
	struct cr_buf b;
	cr_buf_init(&b, 1 << 20);
	assert_int_equal(srv_event_line(&ev, ENG_EV_STDOUT, "hi\n", 3, &b), 0);
	json_t *j = one_line(&b);
	assert_string_equal(json_string_value(json_object_get(j, "type")), "stdout");
	assert_string_equal(json_string_value(json_object_get(j, "text")), "hi\n");
	assert_null(json_object_get(j, "encoding"));
	json_decref(j);
	/* binary: base64 */
	assert_int_equal(srv_event_line(&ev, ENG_EV_STDERR, "\xff\xfe", 2, &b), 0);
	j = one_line(&b);
	assert_string_equal(json_string_value(json_object_get(j, "encoding")), "base64");
	assert_string_equal(json_string_value(json_object_get(j, "text")), "//4=");
	json_decref(j);
	/* a UTF-8 character cut between two chunks is joined, not base64'd */
	assert_int_equal(srv_event_line(&ev, ENG_EV_STDOUT, "a\xc3", 2, &b), 0);
	j = one_line(&b);
	assert_string_equal(json_string_value(json_object_get(j, "text")), "a");
	json_decref(j);
	assert_int_equal(srv_event_line(&ev, ENG_EV_STDOUT, "\xa9z", 2, &b), 0);
	j = one_line(&b);
	assert_string_equal(json_string_value(json_object_get(j, "text")), "\xc3\xa9z");
	json_decref(j);
	/* a dangling tail is flushed before the final line */
	assert_int_equal(srv_event_line(&ev, ENG_EV_STDOUT, "\xe2\x82", 2, &b), 0);
	assert_int_equal(b.len, 0);
	assert_int_equal(srv_events_flush(&ev, &b), 0);
	j = one_line(&b);
	assert_string_equal(json_string_value(json_object_get(j, "encoding")), "base64");
	json_decref(j);
	/* runner events pass through byte for byte */
	const char *disp = "{\"type\":\"display\",\"data\":{\"text/plain\":\"x\"}}";
	assert_int_equal(srv_event_line(&ev, ENG_EV_JSON, disp, strlen(disp), &b), 0);
	assert_int_equal(b.len, strlen(disp) + 1);
	assert_memory_equal(b.data, disp, strlen(disp));
	cr_buf_reset(&b);
	/* ... unless they span lines: then re-serialised on one */
	const char *multi = "{\"type\":\n\"result\", \"data\": {}}";
	assert_int_equal(srv_event_line(&ev, ENG_EV_JSON, multi, strlen(multi), &b), 0);
	json_decref(one_line(&b));
	/* forged or malformed events are dropped */
	const char *forged[] = {"{\"type\":\"final\",\"status\":\"ok\"}", "{\"type\":\"keepalive\"}",
				"{\"type\":\"stdout\",\"text\":\"x\"}", "[1]", "{", "{\"type\":1}",
				"{\"type\":\"display\",\"type\":\"final\"}"};
	for (size_t i = 0; i < sizeof forged / sizeof *forged; i++) {
		assert_int_equal(srv_event_line(&ev, ENG_EV_JSON, forged[i], strlen(forged[i]), &b), 1);
		assert_int_equal(b.len, 0);
	}
	assert_int_equal(srv_event_line(&ev, ENG_EV_KEEPALIVE, "", 0, &b), 0);
	j = one_line(&b);
	assert_string_equal(json_string_value(json_object_get(j, "type")), "keepalive");
	json_decref(j);
	cr_buf_free(&b);
}

static void test_final_and_aggregate(void **state)
{
	(void)state;
	struct eng_final f = {.status = ENG_F_KILLED, .session_alive = 0, .exit_code = -1,
			      .signal = 9, .limits_hit = ENG_HIT_MEMORY, .duration_us = 1500,
			      .cell = 3};
	json_t *j = srv_final_json(&f);
	assert_string_equal(json_string_value(json_object_get(j, "status")), "killed");
	assert_true(json_is_false(json_object_get(j, "session_alive")));
	assert_true(json_is_null(json_object_get(j, "exit_code")));
	assert_int_equal(json_integer_value(json_object_get(j, "signal")), 9);
	assert_true(json_number_value(json_object_get(j, "duration_ms")) == 1.5);
	assert_string_equal(json_string_value(json_array_get(json_object_get(j, "limits_hit"), 0)),
			    "memory");
	json_decref(j);

	struct srv_agg a;
	srv_agg_init(&a);
	srv_agg_add(&a, ENG_EV_STDOUT, "1\n", 2);
	srv_agg_add(&a, ENG_EV_STDOUT, "2\n", 2);
	srv_agg_add(&a, ENG_EV_STDERR, "w\n", 2);
	const char *res = "{\"type\":\"result\",\"data\":{\"text/plain\":\"3\"}}";
	const char *er = "{\"type\":\"error\",\"name\":\"E\",\"value\":\"v\",\"traceback\":\"\"}";
	assert_int_equal(srv_agg_add(&a, ENG_EV_JSON, res, strlen(res)), 0);
	assert_int_equal(srv_agg_add(&a, ENG_EV_JSON, er, strlen(er)), 0);
	assert_int_equal(srv_agg_add(&a, ENG_EV_JSON, "{\"type\":\"final\"}", 16), 1);
	struct eng_final ok = {.status = ENG_F_ERROR, .session_alive = 1};
	j = srv_agg_finish(&a, &ok);
	assert_string_equal(json_string_value(json_object_get(j, "stdout")), "1\n2\n");
	assert_string_equal(json_string_value(json_object_get(j, "stderr")), "w\n");
	assert_int_equal(json_array_size(json_object_get(j, "results")), 1);
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "name")),
			    "E");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "final"),
							      "status")), "error");
	json_decref(j);
	srv_agg_free(&a);
}

static void test_views(void **state)
{
	(void)state;
	char ts[32];
	srv_rfc3339(86400000ULL + 1234, ts, sizeof ts);
	assert_string_equal(ts, "1970-01-02T00:00:01.234Z");
	struct eng_session_info info = {.session = 7, .state = ENG_S_BUSY, .mode = ENG_STATELESS,
					.created_unix_ms = 1000, .expires_unix_ms = 2000,
					.cells = 4};
	info.limits.memory_bytes = 1 << 30;
	json_t *meta = json_pack("{s:s}", "k", "v");
	json_t *j = srv_sandbox_json("sb_0123456789abcdef", &info, meta);
	assert_string_equal(json_string_value(json_object_get(j, "state")), "busy");
	assert_string_equal(json_string_value(json_object_get(j, "mode")), "stateless");
	assert_string_equal(json_string_value(json_object_get(j, "expires_at")),
			    "1970-01-01T00:00:02.000Z");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "usage"), "cells")), 4);
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "metadata"), "k")),
			    "v");
	assert_null(json_object_get(j, "session")); /* the engine's number never leaves */
	json_decref(j);
	json_decref(meta);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_defaults),
		cmocka_unit_test(test_create_full),
		cmocka_unit_test(test_create_rejects),
		cmocka_unit_test(test_create_caps),
		cmocka_unit_test(test_execute),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_errno_table),
		cmocka_unit_test(test_events),
		cmocka_unit_test(test_final_and_aggregate),
		cmocka_unit_test(test_views),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
