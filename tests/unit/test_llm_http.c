/* test_llm_http.c -- llm_complete over real HTTP against tests/mock/model_server.py (loopback),
 * for both providers: tool calls, text, fenced fallback, bad tool arguments, retries
 * (429 + Retry-After, 5xx, timeouts, dropped connections), errors (401, 404, malformed,
 * oversized, quota), and what the client sent (from the server's request log). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/llm.h"
#include "core/log.h"

extern char **environ;

#define PY "/usr/bin/python3"
#define KEY "test-key-SECRET-0123456789"

static const enum llm_provider OPENAI = LLM_OPENAI, ANTHROPIC = LLM_ANTHROPIC;

/* ---- the scripted server ------------------------------------------------------------------- */

struct server {
	pid_t pid;
	int port;
	char dir[64];
	char script[128];
	char log[128];
	char url[64];
};

static char server_py[PATH_MAX];

static void find_server_py(void)
{
	if (access("tests/mock/model_server.py", R_OK) == 0) {
		snprintf(server_py, sizeof server_py, "tests/mock/model_server.py");
		return;
	}
	/* build/<variant>/tests/test_llm_http -> repo root is three levels up */
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	assert_true(n > 0);
	exe[n] = '\0';
	for (int i = 0; i < 4; i++) {
		char *s = strrchr(exe, '/');
		if (s)
			*s = '\0';
	}
	snprintf(server_py, sizeof server_py, "%s/tests/mock/model_server.py", exe);
	assert_int_equal(access(server_py, R_OK), 0);
}

/* Starts the server with the given script (a JSON array of steps). */
static void server_start(struct server *s, const char *script_json)
{
	memset(s, 0, sizeof *s);
	snprintf(s->dir, sizeof s->dir, "/tmp/test_llm_httpXXXXXX");
	assert_non_null(mkdtemp(s->dir));
	snprintf(s->script, sizeof s->script, "%s/script.json", s->dir);
	snprintf(s->log, sizeof s->log, "%s/log.jsonl", s->dir);
	FILE *f = fopen(s->script, "w");
	assert_non_null(f);
	fputs(script_json, f);
	fclose(f);

	int pfd[2];
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	char *argv[] = {(char *)PY, server_py, (char *)"--script", s->script, (char *)"--log", s->log,
			NULL};
	int rc = posix_spawn(&s->pid, PY, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[1]);
	assert_int_equal(rc, 0);

	char line[32] = "";
	size_t n = 0;
	while (n < sizeof line - 1 && !strchr(line, '\n')) {
		struct pollfd p = {.fd = pfd[0], .events = POLLIN};
		if (poll(&p, 1, 15000) <= 0)
			break;
		ssize_t r = read(pfd[0], line + n, sizeof line - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
		line[n] = '\0';
	}
	close(pfd[0]);
	s->port = atoi(line);
	if (s->port <= 0)
		fail_msg("model server did not start (got '%s')", line);
	snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d", s->port);
}

/* Stops the server; returns its request log as an array (caller decrefs). */
static json_t *server_stop(struct server *s)
{
	if (s->pid > 0) {
		/* Bounded, never a hang. The server writes and flushes its log record by record, so
		 * the log is whole even if it must be killed; its own clean exit is not what these
		 * tests check, so a kill is reported on stderr and the test goes on. */
		kill(s->pid, SIGTERM);
		int st = 0;
		pid_t w = 0;
		for (int i = 0; i < 1000 && (w = waitpid(s->pid, &st, WNOHANG)) == 0; i++)
			usleep(10000);
		if (w == 0) {
			fprintf(stderr, "test_llm_http: model server %d did not exit within 10 s of "
					"SIGTERM; killed\n", (int)s->pid);
			kill(s->pid, SIGKILL);
			waitpid(s->pid, &st, 0);
		} else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "test_llm_http: model server ended with status 0x%x\n", st);
		}
		s->pid = -1;
	}
	json_t *arr = json_array();
	FILE *f = fopen(s->log, "r");
	if (f) {
		char *line = NULL;
		size_t cap = 0;
		while (getline(&line, &cap, f) > 0) {
			json_t *j = json_loads(line, 0, NULL);
			assert_non_null(j);
			json_array_append_new(arr, j);
		}
		free(line);
		fclose(f);
	}
	unlink(s->script);
	unlink(s->log);
	rmdir(s->dir);
	return arr;
}

/* ---- helpers ------------------------------------------------------------------------------- */

static enum llm_provider prov(void **state)
{
	return *(const enum llm_provider *)*state;
}

/* A step body in the provider's own convenience shape. */
static void reply_step(char *out, size_t outsz, enum llm_provider p, const char *spec)
{
	snprintf(out, outsz, "{\"%s\":%s}", p == LLM_ANTHROPIC ? "anthropic" : "openai", spec);
}

static struct llm_config config(enum llm_provider p, const struct server *s)
{
	struct llm_config c;
	llm_config_init(&c, p, p == LLM_ANTHROPIC ? "claude-haiku-4-5" : "gpt-5-mini");
	c.base_url = s->url;
	c.api_key = KEY;
	c.backoff_base_ms = 1;
	c.backoff_cap_ms = 5;
	c.total_timeout_ms = 10000;
	return c;
}

static struct llm_conv *simple_conv(void)
{
	struct cr_err err = {0};
	struct llm_conv *c = llm_conv_new();
	llm_conv_add_system(c, "You analyse data with Python.", &err);
	llm_conv_add_user(c, "How many rows?", &err);
	return c;
}

/* Runs one llm_complete against a fresh server with `script`; returns the request log. */
static json_t *run(enum llm_provider p, const char *script, struct llm_config *tweak,
		   const struct llm_conv *conv, struct llm_reply *r, int *rc, struct cr_err *err)
{
	struct server s;
	server_start(&s, script);
	struct llm_config cfg = tweak ? *tweak : config(p, &s);
	cfg.base_url = s.url;
	if (tweak && !cfg.api_key)
		cfg.api_key = KEY;
	struct llm_client *cl = llm_client_new(&cfg, err);
	if (!cl)
		fail_msg("client: %s", err->msg);
	struct llm_conv *own = conv ? NULL : simple_conv();
	*rc = llm_complete(cl, conv ? conv : own, &llm_tool_run_python, 1, r, err);
	llm_conv_free(own);
	llm_client_free(cl);
	return server_stop(&s);
}

static const char *sget(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The log sink: keeps every message so tests can check that the key never shows up. */
static char log_text[16384];
static void capture(enum cr_log_level level, const char *msg, void *ctx)
{
	(void)level;
	(void)ctx;
	size_t n = strlen(log_text);
	snprintf(log_text + n, sizeof log_text - n, "%s\n", msg);
}

/* ---- tests --------------------------------------------------------------------------------- */

static void test_tool_call(void **state)
{
	enum llm_provider p = prov(state);
	char step[1024];
	reply_step(step, sizeof step, p,
		   p == LLM_OPENAI
			   ? "{\"text\":\"Counting.\",\"tool_calls\":[{\"id\":\"call_1\",\"name\":"
			     "\"run_python\",\"arguments\":{\"code\":\"print(len(df))\"}}],\"usage\":"
			     "{\"prompt_tokens\":2000,\"completion_tokens\":30,"
			     "\"prompt_tokens_details\":{\"cached_tokens\":1536}}}"
			   : "{\"text\":\"Counting.\",\"tool_calls\":[{\"id\":\"toolu_1\",\"name\":"
			     "\"run_python\",\"input\":{\"code\":\"print(len(df))\"}}],\"usage\":"
			     "{\"input_tokens\":464,\"cache_read_input_tokens\":1536,"
			     "\"cache_creation_input_tokens\":0,\"output_tokens\":30}}");
	char script[1200];
	snprintf(script, sizeof script, "[%s]", step);
	struct llm_reply r;
	struct cr_err err = {0};
	int rc;
	json_t *log = run(p, script, NULL, NULL, &r, &rc, &err);
	if (rc != 0)
		fail_msg("llm_complete: %s", err.msg);
	assert_int_equal(r.attempts, 1);
	assert_int_equal(r.http_status, 200);
	assert_string_equal(r.text, "Counting.");
	assert_int_equal(r.n_calls, 1);
	assert_string_equal(r.calls[0].name, "run_python");
	assert_string_equal(r.calls[0].id, p == LLM_OPENAI ? "call_1" : "toolu_1");
	assert_string_equal(sget(r.calls[0].arguments, "code"), "print(len(df))");
	assert_int_equal(r.finish, LLM_FINISH_TOOL_USE);
	assert_true(r.usage.known);
	assert_int_equal(r.usage.input, 2000);
	assert_int_equal(r.usage.cache_read, 1536);
	assert_int_equal(r.usage.output, 30);
	assert_true(r.cost_known);
	assert_true(r.cost_usd > 0);
	assert_true(r.elapsed_ms >= r.latency_ms);
	json_t *t = llm_reply_to_trace_json(&r);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(t, "tokens"),
							    "cached")), 1536);
	json_decref(t);
	llm_reply_free(&r);

	/* what was sent */
	assert_int_equal(json_array_size(log), 1);
	json_t *req = json_array_get(log, 0);
	json_t *h = json_object_get(req, "headers");
	assert_true(json_is_true(json_object_get(req, "has_key")));
	if (p == LLM_OPENAI) {
		assert_string_equal(sget(req, "path"), "/v1/chat/completions");
		assert_string_equal(sget(h, "authorization"), "Bearer " KEY);
		assert_null(json_object_get(h, "x-api-key"));
	} else {
		assert_string_equal(sget(req, "path"), "/v1/messages");
		assert_string_equal(sget(h, "x-api-key"), KEY);
		assert_string_equal(sget(h, "anthropic-version"), "2023-06-01");
		assert_null(json_object_get(h, "authorization"));
	}
	assert_string_equal(sget(h, "content-type"), "application/json");
	json_t *body = json_object_get(req, "body");
	assert_true(json_is_object(body));
	char *dump = json_dumps(body, 0);
	assert_null(strstr(dump, "SECRET")); /* the key is only in the header */
	free(dump);
	assert_string_equal(sget(body, "model"), p == LLM_OPENAI ? "gpt-5-mini" : "claude-haiku-4-5");
	assert_int_equal(json_array_size(json_object_get(body, "tools")), 1);
	json_decref(log);
}

static void test_text_and_fenced(void **state)
{
	enum llm_provider p = prov(state);
	char s1[512], s2[512], script[1200];
	reply_step(s1, sizeof s1, p, "{\"text\":\"There are 42 rows.\"}");
	reply_step(s2, sizeof s2, p,
		   "{\"text\":\"Let me check:\\n```python\\nprint(len(df))\\n```\\n\"}");
	snprintf(script, sizeof script, "[%s,%s]", s1, s2);

	struct server s;
	server_start(&s, script);
	struct llm_config cfg = config(p, &s);
	struct cr_err err = {0};
	struct llm_client *cl = llm_client_new(&cfg, &err);
	assert_non_null(cl);
	struct llm_conv *c = simple_conv();
	struct llm_reply r;
	assert_int_equal(llm_complete(cl, c, NULL, 0, &r, &err), 0);
	assert_string_equal(r.text, "There are 42 rows.");
	assert_int_equal(r.n_calls, 0);
	assert_int_equal(r.finish, LLM_FINISH_END);
	assert_false(r.usage.known);
	assert_false(r.cost_known); /* no usage: unknown, not 0 */
	llm_conv_add_reply(c, &r, &err);
	llm_conv_add_user(c, "Check it with code.", &err);
	llm_reply_free(&r);

	assert_int_equal(llm_complete(cl, c, NULL, 0, &r, &err), 0);
	assert_int_equal(r.n_calls, 0);
	struct llm_code_blocks b;
	assert_int_equal(llm_extract_code(r.text, strlen(r.text), &b, &err), 1);
	assert_string_equal(b.v[0].code, "print(len(df))\n");
	llm_code_blocks_free(&b);
	llm_reply_free(&r);
	llm_conv_free(c);
	llm_client_free(cl);
	json_t *log = server_stop(&s);
	assert_int_equal(json_array_size(log), 2);
	/* no tools given: none sent; the second request carries the first answer */
	json_t *b2 = json_object_get(json_array_get(log, 1), "body");
	assert_null(json_object_get(b2, "tools"));
	char *dump = json_dumps(b2, 0);
	assert_non_null(strstr(dump, "There are 42 rows."));
	free(dump);
	json_decref(log);
}

/* Bad arguments are a per-call parse error; the agent sends the error back and the broken
 * call is replayed as {}. */
static void test_invalid_arguments(void **state)
{
	enum llm_provider p = prov(state);
	char s1[512], s2[512], script[1200];
	reply_step(s1, sizeof s1, p,
		   "{\"tool_calls\":[{\"id\":\"c9\",\"name\":\"run_python\",\"arguments_raw\":"
		   "\"{\\\"code\\\": \\\"print(\"}]}");
	reply_step(s2, sizeof s2, p, "{\"text\":\"ok\"}");
	snprintf(script, sizeof script, "[%s,%s]", s1, s2);
	struct server s;
	server_start(&s, script);
	struct llm_config cfg = config(p, &s);
	struct cr_err err = {0};
	struct llm_client *cl = llm_client_new(&cfg, &err);
	struct llm_conv *c = simple_conv();
	struct llm_reply r;
	assert_int_equal(llm_complete(cl, c, &llm_tool_run_python, 1, &r, &err), 0);
	assert_int_equal(r.n_calls, 1);
	assert_null(r.calls[0].arguments);
	assert_string_equal(r.calls[0].arguments_raw, "{\"code\": \"print(");
	assert_non_null(strstr(r.calls[0].arguments_error, "not valid JSON"));
	llm_conv_add_reply(c, &r, &err);
	llm_conv_add_tool_result(c, r.calls[0].id, r.calls[0].arguments_error, true, &err);
	llm_reply_free(&r);
	assert_int_equal(llm_complete(cl, c, &llm_tool_run_python, 1, &r, &err), 0);
	llm_reply_free(&r);
	llm_conv_free(c);
	llm_client_free(cl);
	json_t *log = server_stop(&s);
	json_t *msgs = json_object_get(json_object_get(json_array_get(log, 1), "body"), "messages");
	size_t n = json_array_size(msgs);
	json_t *asst = json_array_get(msgs, n - 2), *res = json_array_get(msgs, n - 1);
	if (p == LLM_OPENAI) {
		json_t *fn = json_object_get(json_array_get(json_object_get(asst, "tool_calls"), 0),
					     "function");
		assert_string_equal(sget(fn, "arguments"), "{}");
		assert_string_equal(sget(res, "role"), "tool");
		assert_string_equal(sget(res, "tool_call_id"), "c9");
		assert_non_null(strstr(sget(res, "content"), "not valid JSON"));
	} else {
		json_t *tu = json_array_get(json_object_get(asst, "content"), 0);
		assert_int_equal(json_object_size(json_object_get(tu, "input")), 0);
		json_t *tr = json_array_get(json_object_get(res, "content"), 0);
		assert_string_equal(sget(tr, "type"), "tool_result");
		assert_string_equal(sget(tr, "tool_use_id"), "c9");
		assert_true(json_is_true(json_object_get(tr, "is_error")));
		assert_non_null(json_object_get(tr, "cache_control"));
	}
	json_decref(log);
}

static void test_429_retry_after(void **state)
{
	enum llm_provider p = prov(state);
	char s2[256], script[800];
	reply_step(s2, sizeof s2, p, "{\"text\":\"after the wait\"}");
	snprintf(script, sizeof script,
		 "[{\"status\":429,\"headers\":{\"Retry-After\":\"1\"},\"error\":{\"message\":"
		 "\"Rate limit reached\",\"type\":\"rate_limit_error\"}},%s]", s2);
	struct llm_reply r;
	struct cr_err err = {0};
	int rc;
	log_text[0] = '\0';
	json_t *log = run(p, script, NULL, NULL, &r, &rc, &err);
	if (rc != 0)
		fail_msg("llm_complete: %s", err.msg);
	assert_int_equal(r.attempts, 2);
	assert_string_equal(r.text, "after the wait");
	assert_true(r.elapsed_ms >= 900);
	llm_reply_free(&r);
	assert_int_equal(json_array_size(log), 2);
	double t1 = json_real_value(json_object_get(json_array_get(log, 0), "t"));
	double t2 = json_real_value(json_object_get(json_array_get(log, 1), "t"));
	assert_true(t2 - t1 >= 0.9); /* lower bound only */
	assert_non_null(strstr(log_text, "HTTP 429"));
	assert_null(strstr(log_text, "SECRET"));
	json_decref(log);
}

static void test_5xx_exhausts_retries(void **state)
{
	enum llm_provider p = prov(state);
	char ok[256], script[1200] = "[";
	for (int i = 0; i < 5; i++)
		strcat(script, "{\"status\":500,\"error\":{\"message\":\"The server had an error\","
			       "\"type\":\"server_error\"}},");
	reply_step(ok, sizeof ok, p, "{\"text\":\"never reached\"}");
	strcat(script, ok);
	strcat(script, "]");
	struct llm_reply r;
	struct cr_err err = {0};
	int rc;
	json_t *log = run(p, script, NULL, NULL, &r, &rc, &err);
	assert_int_equal(rc, -EAGAIN);
	char want[80];
	snprintf(want, sizeof want, "%s: gave up after 5 attempts: HTTP 500 server_error",
		 llm_provider_name(p));
	if (strncmp(err.msg, want, strlen(want)) != 0)
		fail_msg("got '%s'", err.msg);
	assert_non_null(strstr(err.msg, "The server had an error"));
	assert_null(strchr(err.msg, '\n'));
	assert_int_equal(r.attempts, 5);
	assert_int_equal(r.http_status, 500);
	json_t *t = llm_reply_to_trace_json(&r); /* diagnostics on failure too */
	assert_int_equal(json_integer_value(json_object_get(t, "attempts")), 5);
	json_decref(t);
	llm_reply_free(&r);
	assert_int_equal(json_array_size(log), 5);
	json_decref(log);
}

static void test_401(void **state)
{
	enum llm_provider p = prov(state);
	const char *script = "[{\"status\":401,\"error\":{\"message\":\"Incorrect API key provided: "
			     KEY "\",\"type\":\"authentication_error\"}}]";
	struct llm_reply r;
	struct cr_err err = {0};
	int rc;
	json_t *log = run(p, script, NULL, NULL, &r, &rc, &err);
	assert_int_equal(rc, -EACCES);
	assert_non_null(strstr(err.msg, "authentication failed (HTTP 401)"));
	assert_non_null(strstr(err.msg, llm_key_env_name(p)));
	assert_null(strstr(err.msg, "SECRET"));
	assert_int_equal(r.attempts, 1);
	llm_reply_free(&r);
	json_decref(log);
}

static void test_404_model(void **state)
{
	enum llm_provider p = prov(state);
	const char *script =
		p == LLM_OPENAI
			? "[{\"status\":404,\"error\":{\"message\":\"The model 'gpt-x' does not "
			  "exist\",\"type\":\"invalid_request_error\",\"code\":\"model_not_found\"}}]"
			: "[{\"status\":404,\"error\":{\"message\":\"model: claude-x\",\"type\":"
			  "\"not_found_error\"}}]";
	struct llm_config cfg;
	llm_config_init(&cfg, p, p == LLM_OPENAI ? "gpt-x" : "claude-x");
	cfg.api_key = KEY;
	struct llm_reply r;
	struct cr_err err = {0};
	int rc;
	json_t *log = run(p, script, &cfg, NULL, &r, &rc, &err);
	assert_int_equal(rc, -ENOENT);
	char want[80];
	snprintf(want, sizeof want, "%s: unknown model '%s' (HTTP 404)", llm_provider_name(p),
		 p == LLM_OPENAI ? "gpt-x" : "claude-x");
	if (strncmp(err.msg, want, strlen(want)) != 0)
		fail_msg("got '%s'", err.msg);
	assert_int_equal(r.attempts, 1);
	llm_reply_free(&r);
	json_decref(log);

	/* A 404 that is not about the model: a wrong base URL. */
	log = run(p, "[{\"status\":404,\"raw\":\"<html>Not Found</html>\"}]", NULL, NULL, &r, &rc,
		  &err);
	assert_int_equal(rc, -ENOENT);
	assert_non_null(strstr(err.msg, "check the base URL"));
	llm_reply_free(&r);
	json_decref(log);
}

static void test_malformed(void **state)
{
	enum llm_provider p = prov(state);
	struct llm_reply r;
	struct cr_err err = {0};
	int rc;
	json_t *log = run(p, "[{\"raw\":\"{\\\"choices\\\": [oops\"}]", NULL, NULL, &r, &rc, &err);
	assert_int_equal(rc, -EPROTO);
	char want[64];
	snprintf(want, sizeof want, "%s: malformed reply: invalid JSON", llm_provider_name(p));
	if (strncmp(err.msg, want, strlen(want)) != 0)
		fail_msg("got '%s'", err.msg);
	assert_int_equal(r.attempts, 1);
	llm_reply_free(&r);
	json_decref(log);

	/* valid JSON, wrong shape */
	log = run(p, "[{\"body\":{\"id\":\"x\"}}]", NULL, NULL, &r, &rc, &err);
	assert_int_equal(rc, -EPROTO);
	assert_non_null(strstr(err.msg, "malformed reply: "));
	llm_reply_free(&r);
	json_decref(log);
}

static void test_oversized(void **state)
{
	enum llm_provider p = prov(state);
	struct llm_config cfg;
	llm_config_init(&cfg, p, "m");
	cfg.max_reply_bytes = 64 * 1024;
	struct llm_reply r;
	struct cr_err err = {0};
	int rc;
	json_t *log = run(p, "[{\"raw\":\"0123456789abcdef\",\"repeat\":20000}]", &cfg, NULL, &r,
			  &rc, &err);
	assert_int_equal(rc, -EMSGSIZE);
	assert_non_null(strstr(err.msg, "larger than the 65536-byte limit"));
	assert_int_equal(r.attempts, 1);
	llm_reply_free(&r);
	json_decref(log);
}

static void test_timeout_then_retry(void **state)
{
	enum llm_provider p = prov(state);
	char s1[256], s2[256], script[700];
	reply_step(s1, sizeof s1, p, "{\"text\":\"too late\"}");
	reply_step(s2, sizeof s2, p, "{\"text\":\"second try\"}");
	snprintf(script, sizeof script, "[{\"delay_ms\":2000,%s,%s]", s1 + 1, s2);
	struct llm_config cfg;
	llm_config_init(&cfg, p, "m");
	cfg.api_key = KEY;
	cfg.total_timeout_ms = 400;
	cfg.backoff_base_ms = 1;
	cfg.backoff_cap_ms = 5;
	struct llm_reply r;
	struct cr_err err = {0};
	int rc;
	json_t *log = run(p, script, &cfg, NULL, &r, &rc, &err);
	if (rc != 0)
		fail_msg("llm_complete: %s", err.msg);
	assert_int_equal(r.attempts, 2);
	assert_string_equal(r.text, "second try");
	llm_reply_free(&r);
	json_decref(log);

	/* all attempts time out: gave up, with the cause */
	cfg.max_retries = 1;
	log = run(p, "[{\"delay_ms\":1500},{\"delay_ms\":1500}]", &cfg, NULL, &r, &rc, &err);
	assert_int_equal(rc, -EAGAIN);
	assert_non_null(strstr(err.msg, "gave up after 2 attempts: timeout"));
	llm_reply_free(&r);
	json_decref(log);
}

static void test_dropped_connection(void **state)
{
	enum llm_provider p = prov(state);
	char s2[256], script[600];
	reply_step(s2, sizeof s2, p, "{\"text\":\"hello again\"}");
	snprintf(script, sizeof script, "[{\"drop\":true},%s]", s2);
	struct llm_reply r;
	struct cr_err err = {0};
	int rc;
	json_t *log = run(p, script, NULL, NULL, &r, &rc, &err);
	if (rc != 0)
		fail_msg("llm_complete: %s", err.msg);
	assert_int_equal(r.attempts, 2);
	llm_reply_free(&r);
	json_decref(log);
}

static void test_no_retry_cases(void **state)
{
	enum llm_provider p = prov(state);
	struct llm_reply r;
	struct cr_err err = {0};
	int rc;
	/* x-should-retry: false wins over a retryable status */
	json_t *log = run(p, "[{\"status\":503,\"headers\":{\"x-should-retry\":\"false\"},"
			     "\"error\":{\"message\":\"busy\"}},{\"status\":200}]",
			  NULL, NULL, &r, &rc, &err);
	assert_int_equal(rc, -EIO);
	assert_non_null(strstr(err.msg, "HTTP 503"));
	assert_int_equal(r.attempts, 1);
	llm_reply_free(&r);
	json_decref(log);

	/* out of quota: a 429 that must not be retried */
	log = run(p, "[{\"status\":429,\"error\":{\"message\":\"You exceeded your current quota\","
		     "\"type\":\"insufficient_quota\",\"code\":\"insufficient_quota\"}}]",
		  NULL, NULL, &r, &rc, &err);
	assert_int_equal(rc, -EDQUOT);
	assert_int_equal(r.attempts, 1);
	llm_reply_free(&r);
	json_decref(log);

	/* a Retry-After above the cap: give up at once, saying so */
	log = run(p, "[{\"status\":429,\"headers\":{\"Retry-After\":\"3600\"},\"error\":"
		     "{\"message\":\"slow down\"}}]", NULL, NULL, &r, &rc, &err);
	assert_int_equal(rc, -EAGAIN);
	assert_non_null(strstr(err.msg, "3600 s, more than the 60 s limit"));
	assert_int_equal(r.attempts, 1);
	llm_reply_free(&r);
	json_decref(log);

	/* 400: the provider's message, escaped and on one line */
	log = run(p, "[{\"status\":400,\"error\":{\"message\":\"bad\\nparam\\u001b[31m\"}}]", NULL,
		  NULL, &r, &rc, &err);
	assert_int_equal(rc, -EINVAL);
	assert_non_null(strstr(err.msg, "request rejected (HTTP 400)"));
	assert_null(strchr(err.msg, '\n'));
	assert_null(strchr(err.msg, 0x1b));
	llm_reply_free(&r);
	json_decref(log);
}

/* Base URLs with and without /v1 reach the same endpoint; nothing listens -> clear error. */
static void test_base_url(void **state)
{
	enum llm_provider p = prov(state);
	char s1[256], script[600];
	reply_step(s1, sizeof s1, p, "{\"text\":\"hi\"}");
	snprintf(script, sizeof script, "[%s]", s1);
	struct server s;
	server_start(&s, script);
	char base[96];
	snprintf(base, sizeof base, "%s/v1/", s.url);
	struct llm_config cfg = config(p, &s);
	cfg.base_url = base;
	cfg.api_key = NULL; /* local servers: no key header at all */
	struct cr_err err = {0};
	struct llm_client *cl = llm_client_new(&cfg, &err);
	struct llm_conv *c = simple_conv();
	struct llm_reply r;
	assert_int_equal(llm_complete(cl, c, NULL, 0, &r, &err), 0);
	llm_reply_free(&r);
	llm_client_free(cl);
	json_t *log = server_stop(&s);
	json_t *req = json_array_get(log, 0);
	assert_string_equal(sget(req, "path"),
			    p == LLM_OPENAI ? "/v1/chat/completions" : "/v1/messages");
	assert_true(json_is_false(json_object_get(req, "has_key")));
	json_decref(log);

	/* the port is closed now: connection refused, retried, then a clear error */
	cfg.base_url = s.url;
	cfg.max_retries = 1;
	cl = llm_client_new(&cfg, &err);
	assert_int_equal(llm_complete(cl, c, NULL, 0, &r, &err), -EAGAIN);
	assert_non_null(strstr(err.msg, "gave up after 2 attempts"));
	assert_int_equal(r.http_status, 0);
	llm_reply_free(&r);

	/* cancelled before it starts */
	volatile sig_atomic_t stop = 1;
	cfg.cancel = &stop;
	llm_client_free(cl);
	cl = llm_client_new(&cfg, &err);
	assert_int_equal(llm_complete(cl, c, NULL, 0, &r, &err), -ECANCELED);
	llm_reply_free(&r);
	llm_client_free(cl);
	llm_conv_free(c);
}

static int setup(void **state)
{
	(void)state;
	find_server_py();
	cr_log_set_sink(capture, NULL);
	return llm_global_init(NULL);
}

static int teardown(void **state)
{
	(void)state;
	llm_global_cleanup();
	cr_log_set_sink(NULL, NULL);
	return 0;
}

#define BOTH(fn)                                                                              \
	{#fn "_openai", fn, NULL, NULL, (void *)&OPENAI},                                     \
	{                                                                                     \
		#fn "_anthropic", fn, NULL, NULL, (void *)&ANTHROPIC                          \
	}

int main(void)
{
	if (access(PY, X_OK) != 0) {
		printf("1..0 # SKIP %s not found\n", PY);
		return 0;
	}
	const struct CMUnitTest tests[] = {
		BOTH(test_tool_call),
		BOTH(test_text_and_fenced),
		BOTH(test_invalid_arguments),
		BOTH(test_429_retry_after),
		BOTH(test_5xx_exhausts_retries),
		BOTH(test_401),
		BOTH(test_404_model),
		BOTH(test_malformed),
		BOTH(test_oversized),
		BOTH(test_timeout_then_retry),
		BOTH(test_dropped_connection),
		BOTH(test_no_retry_cases),
		BOTH(test_base_url),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
