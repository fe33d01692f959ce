/* test_llm.c -- the model-facing layer without a network: request bodies for both providers,
 * reply and error parsing, fenced-code extraction, retry arithmetic, cost, trace, keys. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/agent.h"
#include "agent/llm.h"
#include "agent/llm_wire.h"

/* ---- helpers ------------------------------------------------------------------------------- */

#define ARGS_A1 "{\"code\": \"print(1)\" }" /* odd spacing: must be echoed unchanged */
#define ARGS_BAD "{\"code\": \"pri"

static struct llm_config cfg_for(enum llm_provider p)
{
	struct llm_config c;
	llm_config_init(&c, p, p == LLM_OPENAI ? "gpt-5-mini" : "claude-sonnet-4-5");
	return c;
}

/* system, user, assistant(text + 2 calls), results in reverse order, user, assistant(bad args
 * call), its result. */
static struct llm_conv *sample_conv(void)
{
	struct cr_err err = {0};
	struct llm_conv *c = llm_conv_new();
	assert_non_null(c);
	assert_int_equal(llm_conv_add_system(c, "You are corral.", &err), 0);
	assert_int_equal(llm_conv_add_user(c, "Analyse data.csv", &err), 0);
	struct llm_tool_call calls[2] = {
		{.id = "call_A1", .name = "run_python", .arguments = ARGS_A1},
		{.id = "call_A2", .name = "run_python", .arguments = "{\"code\":\"x\"}"},
	};
	assert_int_equal(llm_conv_add_assistant(c, "Let me look.", calls, 2, &err), 0);
	assert_int_equal(llm_conv_add_tool_result(c, "call_A2", "two", false, &err), 0);
	assert_int_equal(llm_conv_add_tool_result(c, "call_A1", "Traceback: boom", true, &err), 0);
	assert_int_equal(llm_conv_add_user(c, "continue", &err), 0);
	struct llm_tool_call bad = {.id = "call_B1", .name = "run_python", .arguments = ARGS_BAD};
	assert_int_equal(llm_conv_add_assistant(c, NULL, &bad, 1, &err), 0);
	assert_int_equal(llm_conv_add_tool_result(c, "call_B1", "error: not valid JSON", true, &err),
			 0);
	return c;
}

static json_t *build(enum llm_provider p, const struct llm_config *cfg, const struct llm_conv *c,
		     char **body_out)
{
	struct cr_err err = {0};
	char *body = llm_request_body(cfg, c, &llm_tool_run_python, 1, &err);
	if (!body)
		fail_msg("request body: %s", err.msg);
	(void)p;
	json_t *j = json_loads(body, 0, NULL);
	assert_non_null(j);
	if (body_out)
		*body_out = body;
	else
		free(body);
	return j;
}

static const char *sget(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static size_t count_substr(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

/* ---- requests: OpenAI ---------------------------------------------------------------------- */

static void test_openai_request(void **state)
{
	(void)state;
	struct llm_conv *c = sample_conv();
	struct llm_config cfg = cfg_for(LLM_OPENAI);
	char *body;
	json_t *j = build(LLM_OPENAI, &cfg, c, &body);

	assert_string_equal(sget(j, "model"), "gpt-5-mini");
	assert_int_equal(json_integer_value(json_object_get(j, "max_completion_tokens")), 4096);
	assert_null(json_object_get(j, "max_tokens"));
	assert_null(json_object_get(j, "tool_choice"));
	assert_null(json_object_get(j, "temperature"));
	assert_true(json_is_false(json_object_get(j, "stream")));
	json_t *t0 = json_array_get(json_object_get(j, "tools"), 0);
	assert_string_equal(sget(t0, "type"), "function");
	json_t *fn = json_object_get(t0, "function");
	assert_string_equal(sget(fn, "name"), "run_python");
	assert_true(json_is_object(json_object_get(fn, "parameters")));
	/* messages is the last key: the tail grows at the end of the body */
	assert_true(strstr(body, "\"messages\":") > strstr(body, "\"tools\":"));
	assert_int_equal(body[strlen(body) - 1], '}');
	assert_int_equal(body[strlen(body) - 2], ']');

	json_t *m = json_object_get(j, "messages");
	assert_int_equal(json_array_size(m), 8);
	assert_string_equal(sget(json_array_get(m, 0), "role"), "system");
	assert_string_equal(sget(json_array_get(m, 0), "content"), "You are corral.");
	assert_string_equal(sget(json_array_get(m, 1), "role"), "user");
	json_t *a = json_array_get(m, 2);
	assert_string_equal(sget(a, "role"), "assistant");
	assert_string_equal(sget(a, "content"), "Let me look.");
	json_t *tc = json_object_get(a, "tool_calls");
	assert_int_equal(json_array_size(tc), 2);
	assert_string_equal(sget(json_array_get(tc, 0), "id"), "call_A1");
	assert_string_equal(sget(json_array_get(tc, 0), "type"), "function");
	json_t *f0 = json_object_get(json_array_get(tc, 0), "function");
	assert_string_equal(sget(f0, "name"), "run_python");
	assert_string_equal(sget(f0, "arguments"), ARGS_A1); /* byte for byte */
	/* results follow in call order although the conv had them reversed */
	assert_string_equal(sget(json_array_get(m, 3), "role"), "tool");
	assert_string_equal(sget(json_array_get(m, 3), "tool_call_id"), "call_A1");
	assert_string_equal(sget(json_array_get(m, 3), "content"), "Traceback: boom");
	assert_string_equal(sget(json_array_get(m, 4), "tool_call_id"), "call_A2");
	assert_string_equal(sget(json_array_get(m, 5), "content"), "continue");
	/* assistant with only a call: content null; the broken call is replayed as {} */
	json_t *b = json_array_get(m, 6);
	assert_true(json_is_null(json_object_get(b, "content")));
	json_t *fb = json_object_get(json_array_get(json_object_get(b, "tool_calls"), 0), "function");
	assert_string_equal(sget(fb, "arguments"), "{}");
	assert_string_equal(sget(json_array_get(m, 7), "tool_call_id"), "call_B1");
	json_decref(j);
	free(body);

	/* Local servers: max_tokens; LM Studio: "" instead of null; prompt_cache_key. */
	cfg.base_url = "http://localhost:11434/v1";
	cfg.openai_empty_content = true;
	cfg.prompt_cache_key = "corral-analyze";
	cfg.temperature = 0.2;
	j = build(LLM_OPENAI, &cfg, c, NULL);
	assert_int_equal(json_integer_value(json_object_get(j, "max_tokens")), 4096);
	assert_null(json_object_get(j, "max_completion_tokens"));
	assert_string_equal(sget(j, "prompt_cache_key"), "corral-analyze");
	assert_true(json_real_value(json_object_get(j, "temperature")) == 0.2);
	b = json_array_get(json_object_get(j, "messages"), 6);
	assert_string_equal(sget(b, "content"), "");
	json_decref(j);
	cfg.token_field = LLM_TOKENS_MAX_COMPLETION;
	assert_true(llm_openai_uses_max_completion(&cfg));
	llm_conv_free(c);
}

/* ---- requests: Anthropic ------------------------------------------------------------------- */

static void test_anthropic_request(void **state)
{
	(void)state;
	struct llm_conv *c = sample_conv();
	struct llm_config cfg = cfg_for(LLM_ANTHROPIC);
	char *body;
	json_t *j = build(LLM_ANTHROPIC, &cfg, c, &body);

	assert_string_equal(sget(j, "model"), "claude-sonnet-4-5");
	assert_int_equal(json_integer_value(json_object_get(j, "max_tokens")), 4096);
	json_t *sys = json_object_get(j, "system");
	assert_int_equal(json_array_size(sys), 1);
	assert_string_equal(sget(json_array_get(sys, 0), "type"), "text");
	assert_string_equal(sget(json_array_get(sys, 0), "text"), "You are corral.");
	assert_string_equal(sget(json_object_get(json_array_get(sys, 0), "cache_control"), "type"),
			    "ephemeral");
	json_t *t0 = json_array_get(json_object_get(j, "tools"), 0);
	assert_string_equal(sget(t0, "name"), "run_python");
	assert_true(json_is_object(json_object_get(t0, "input_schema")));
	assert_non_null(json_object_get(t0, "cache_control"));
	assert_int_equal(count_substr(body, "\"cache_control\""), 3); /* tools, system, last */

	json_t *m = json_object_get(j, "messages");
	assert_int_equal(json_array_size(m), 5);
	/* user */
	assert_string_equal(sget(json_array_get(m, 0), "role"), "user");
	/* assistant: text, then both tool_use blocks with object input */
	json_t *a = json_object_get(json_array_get(m, 1), "content");
	assert_string_equal(sget(json_array_get(m, 1), "role"), "assistant");
	assert_int_equal(json_array_size(a), 3);
	assert_string_equal(sget(json_array_get(a, 0), "text"), "Let me look.");
	assert_string_equal(sget(json_array_get(a, 1), "type"), "tool_use");
	assert_string_equal(sget(json_array_get(a, 1), "id"), "call_A1");
	json_t *in = json_object_get(json_array_get(a, 1), "input");
	assert_string_equal(sget(in, "code"), "print(1)");
	/* one merged user turn: both results first (call order, is_error kept), then the text */
	json_t *u = json_object_get(json_array_get(m, 2), "content");
	assert_string_equal(sget(json_array_get(m, 2), "role"), "user");
	assert_int_equal(json_array_size(u), 3);
	assert_string_equal(sget(json_array_get(u, 0), "type"), "tool_result");
	assert_string_equal(sget(json_array_get(u, 0), "tool_use_id"), "call_A1");
	assert_true(json_is_true(json_object_get(json_array_get(u, 0), "is_error")));
	assert_string_equal(sget(json_array_get(u, 1), "tool_use_id"), "call_A2");
	assert_null(json_object_get(json_array_get(u, 1), "is_error"));
	assert_string_equal(sget(json_array_get(u, 2), "type"), "text");
	assert_null(json_object_get(json_array_get(u, 2), "cache_control"));
	/* the broken call: input {} (never replayed verbatim); no empty text block */
	json_t *b = json_object_get(json_array_get(m, 3), "content");
	assert_int_equal(json_array_size(b), 1);
	assert_int_equal(json_object_size(json_object_get(json_array_get(b, 0), "input")), 0);
	/* the moving breakpoint on the very last block */
	json_t *last = json_object_get(json_array_get(m, 4), "content");
	assert_string_equal(sget(json_array_get(m, 4), "role"), "user");
	assert_non_null(json_object_get(json_array_get(last, 0), "cache_control"));
	json_decref(j);
	free(body);

	cfg.anthropic_no_cache = true;
	j = build(LLM_ANTHROPIC, &cfg, c, &body);
	assert_null(strstr(body, "cache_control"));
	json_decref(j);
	free(body);
	llm_conv_free(c);
}

/* Unanswered calls get a synthetic error result; a result answering nothing is dropped. */
static void test_normalize(void **state)
{
	(void)state;
	struct cr_err err = {0};
	struct llm_conv *c = llm_conv_new();
	llm_conv_add_user(c, "go", &err);
	llm_conv_add_tool_result(c, "nobody", "orphan", false, &err);
	struct llm_tool_call k = {.id = "t1", .name = "run_python", .arguments = ""};
	llm_conv_add_assistant(c, "", &k, 1, &err);
	struct llm_norm_msg *v;
	size_t n;
	assert_int_equal(llm_conv_normalize(c, &v, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_int_equal(v[0].role, LLM_ROLE_USER);
	assert_int_equal(v[1].role, LLM_ROLE_ASSISTANT);
	assert_int_equal(v[2].role, LLM_ROLE_TOOL);
	assert_true(v[2].synthetic && v[2].is_error);
	assert_string_equal(v[2].tool_call_id, "t1");
	free(v);

	struct llm_config cfg = cfg_for(LLM_ANTHROPIC);
	json_t *j = build(LLM_ANTHROPIC, &cfg, c, NULL);
	json_t *m = json_object_get(j, "messages");
	assert_int_equal(json_array_size(m), 3);
	json_t *r = json_array_get(json_object_get(json_array_get(m, 2), "content"), 0);
	assert_string_equal(sget(r, "content"), LLM_SYNTH_RESULT);
	assert_true(json_is_true(json_object_get(r, "is_error")));
	json_decref(j);

	/* Invalid UTF-8 is replaced, so the request still serialises. */
	assert_int_equal(llm_conv_add_user(c, "bad \xff\xfe byte", &err), 0);
	assert_string_equal(c->msgs[c->n - 1].text, "bad \xEF\xBF\xBD\xEF\xBF\xBD byte");
	llm_conv_truncate(c, 1);
	assert_int_equal(c->n, 1);
	llm_conv_free(c);

	/* Tool definitions are checked. */
	struct llm_tool bad_name = {.name = "run python", .parameters = NULL};
	assert_null(llm_tool_schema(&bad_name, &err));
	assert_int_equal(err.code, EINVAL);
	struct llm_tool bad_schema = {.name = "x", .parameters = "[1]"};
	assert_null(llm_tool_schema(&bad_schema, &err));
	struct llm_tool none = {.name = "x"};
	json_t *s = llm_tool_schema(&none, &err);
	assert_string_equal(sget(s, "type"), "object");
	json_decref(s);
}

/* A request whose conv only grew at the tail repeats the previous one up to the old tail. */
static void test_stable_prefix(void **state)
{
	(void)state;
	for (int p = LLM_OPENAI; p <= LLM_ANTHROPIC; p++) {
		struct cr_err err = {0};
		struct llm_config cfg = cfg_for((enum llm_provider)p);
		struct llm_conv *c = llm_conv_new();
		llm_conv_add_system(c, "Stable rules.", &err);
		llm_conv_add_user(c, "Task.", &err);
		struct llm_tool_call k = {.id = "c1", .name = "run_python", .arguments = ARGS_A1};
		llm_conv_add_assistant(c, NULL, &k, 1, &err);
		llm_conv_add_tool_result(c, "c1", "out 1", false, &err);
		char *b1 = llm_request_body(&cfg, c, &llm_tool_run_python, 1, &err);
		k.id = "c2";
		llm_conv_add_assistant(c, "more", &k, 1, &err);
		llm_conv_add_tool_result(c, "c2", "out 2", false, &err);
		char *b2 = llm_request_body(&cfg, c, &llm_tool_run_python, 1, &err);
		char *b1again = llm_request_body(&cfg, c, &llm_tool_run_python, 1, &err);
		assert_non_null(b1);
		assert_non_null(b2);
		assert_string_equal(b2, b1again); /* deterministic */
		size_t keep;
		if (p == LLM_OPENAI) {
			keep = strlen(b1) - 2; /* everything but the closing "]}" */
		} else {
			/* everything before the old moving breakpoint */
			const char *last = NULL;
			for (const char *q = b1; (q = strstr(q, ",\"cache_control\"")); q++)
				last = q;
			assert_non_null(last);
			keep = (size_t)(last - b1);
		}
		assert_true(strlen(b2) > strlen(b1));
		assert_memory_equal(b1, b2, keep);
		free(b1);
		free(b2);
		free(b1again);
		llm_conv_free(c);
	}
}

/* ---- replies ------------------------------------------------------------------------------- */

static int parse(enum llm_provider p, const char *body, struct llm_reply *r, struct cr_err *err)
{
	llm_reply_init(r, p);
	return llm_parse_reply(p, body, strlen(body), NULL, r, err);
}

static void test_openai_reply(void **state)
{
	(void)state;
	struct cr_err err = {0};
	struct llm_reply r;
	/* wire-format doc 1.2 */
	const char *doc = "{\"id\":\"chatcmpl-9x\",\"object\":\"chat.completion\",\"created\":1763700000,"
			  "\"model\":\"gpt-5-mini-2025-08-07\",\"choices\":[{\"index\":0,"
			  "\"finish_reason\":\"tool_calls\",\"message\":{\"role\":\"assistant\","
			  "\"content\":null,\"refusal\":null,\"tool_calls\":[{\"id\":\"call_B7\","
			  "\"type\":\"function\",\"function\":{\"name\":\"read_file\",\"arguments\":"
			  "\"{\\\"path\\\":\\\"src/main.c\\\"}\"}}]}}],\"usage\":{\"prompt_tokens\":1830,"
			  "\"completion_tokens\":42,\"total_tokens\":1872,\"prompt_tokens_details\":"
			  "{\"cached_tokens\":1664},\"completion_tokens_details\":{\"reasoning_tokens\":7}}}";
	assert_int_equal(parse(LLM_OPENAI, doc, &r, &err), 0);
	assert_string_equal(r.text, "");
	assert_int_equal(r.n_calls, 1);
	assert_string_equal(r.calls[0].id, "call_B7");
	assert_string_equal(r.calls[0].name, "read_file");
	assert_string_equal(r.calls[0].arguments_raw, "{\"path\":\"src/main.c\"}");
	assert_string_equal(sget(r.calls[0].arguments, "path"), "src/main.c");
	assert_null(r.calls[0].arguments_error);
	assert_int_equal(r.finish, LLM_FINISH_TOOL_USE);
	assert_string_equal(r.finish_raw, "tool_calls");
	assert_string_equal(r.model, "gpt-5-mini-2025-08-07");
	assert_true(r.usage.known);
	assert_int_equal(r.usage.input, 1830); /* prompt_tokens already includes the cached part */
	assert_int_equal(r.usage.cache_read, 1664);
	assert_int_equal(r.usage.output, 42);
	assert_int_equal(r.usage.reasoning, 7);
	llm_reply_free(&r);

	/* text only, no usage */
	assert_int_equal(parse(LLM_OPENAI, "{\"choices\":[{\"message\":{\"content\":\"Hello\"},"
					   "\"finish_reason\":\"stop\"}]}", &r, &err), 0);
	assert_string_equal(r.text, "Hello");
	assert_int_equal(r.n_calls, 0);
	assert_int_equal(r.finish, LLM_FINISH_END);
	assert_false(r.usage.known);
	llm_reply_free(&r);

	/* text and calls; invalid JSON, non-object, "" and object arguments; missing id; "stop"
	 * beside calls (some local servers) */
	const char *mixed =
		"{\"choices\":[{\"finish_reason\":\"stop\",\"message\":{\"content\":[{\"type\":"
		"\"text\",\"text\":\"A\"},{\"type\":\"text\",\"text\":\"B\"}],\"tool_calls\":["
		"{\"id\":\"c1\",\"function\":{\"name\":\"run_python\",\"arguments\":\"{\\\"code\\\": \\\"pri\"}},"
		"{\"id\":\"c2\",\"function\":{\"name\":\"run_python\",\"arguments\":\"[1,2]\"}},"
		"{\"id\":\"c3\",\"function\":{\"name\":\"run_python\",\"arguments\":\"\"}},"
		"{\"function\":{\"name\":\"run_python\",\"arguments\":{\"code\":\"1\"}}}]}}],"
		"\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":5,\"prompt_tokens_details\":"
		"{\"cached_tokens\":0,\"cache_write_tokens\":8}}}";
	assert_int_equal(parse(LLM_OPENAI, mixed, &r, &err), 0);
	assert_string_equal(r.text, "AB");
	assert_int_equal(r.n_calls, 4);
	assert_int_equal(r.finish, LLM_FINISH_TOOL_USE);
	assert_string_equal(r.finish_raw, "stop");
	assert_null(r.calls[0].arguments);
	assert_string_equal(r.calls[0].arguments_raw, "{\"code\": \"pri");
	assert_non_null(strstr(r.calls[0].arguments_error, "not valid JSON"));
	assert_null(r.calls[1].arguments);
	assert_non_null(strstr(r.calls[1].arguments_error, "got an array"));
	assert_int_equal(json_object_size(r.calls[2].arguments), 0);
	assert_null(r.calls[2].arguments_error);
	assert_string_equal(r.calls[3].arguments_raw, "{\"code\":\"1\"}");
	assert_non_null(r.calls[3].id);
	assert_true(strncmp(r.calls[3].id, "call_corral_", 12) == 0);
	assert_int_equal(r.usage.cache_write, 8);

	/* the reply goes back into a conv unchanged */
	struct llm_conv *c = llm_conv_new();
	assert_int_equal(llm_conv_add_reply(c, &r, &err), 0);
	assert_int_equal(c->msgs[0].n_calls, 4);
	assert_string_equal(c->msgs[0].calls[0].arguments, "{\"code\": \"pri");
	assert_string_equal(c->msgs[0].text, "AB");
	llm_conv_free(c);
	llm_reply_free(&r);

	/* refusal and length */
	assert_int_equal(parse(LLM_OPENAI, "{\"choices\":[{\"finish_reason\":\"stop\",\"message\":"
					   "{\"content\":null,\"refusal\":\"I can't help.\"}}]}",
			       &r, &err), 0);
	assert_int_equal(r.finish, LLM_FINISH_REFUSAL);
	assert_string_equal(r.refusal, "I can't help.");
	llm_reply_free(&r);
	assert_int_equal(parse(LLM_OPENAI, "{\"choices\":[{\"finish_reason\":\"length\",\"message\":"
					   "{\"content\":\"cut\"}}]}", &r, &err), 0);
	assert_int_equal(r.finish, LLM_FINISH_LENGTH);
	llm_reply_free(&r);
	assert_int_equal(parse(LLM_OPENAI, "{\"choices\":[{\"finish_reason\":\"content_filter\","
					   "\"message\":{}}]}", &r, &err), 0);
	assert_int_equal(r.finish, LLM_FINISH_REFUSAL);
	llm_reply_free(&r);

	/* malformed */
	static const struct { const char *body, *msg; } bad[] = {
		{"{\"id\":\"x\"}", "malformed reply: choices missing or empty"},
		{"{\"choices\":[]}", "malformed reply: choices missing or empty"},
		{"{\"choices\":[{\"finish_reason\":\"stop\"}]}", "malformed reply: choices[0].message missing"},
		{"{\"choices\":[{\"message\":{\"tool_calls\":[{\"id\":\"a\"}]}}]}",
		 "malformed reply: choices[0].message.tool_calls[0].function missing"},
		{"{\"choices\":[{\"message\":{\"tool_calls\":[{\"function\":{}}]}}]}",
		 "malformed reply: choices[0].message.tool_calls[0].function.name missing"},
		{"{\"choices\":[{\"message\":{\"content\":5}}]}", "malformed reply: choices[0].message.content is a number"},
		{"[1]", "malformed reply: top level is an array, not an object"},
		{"{not json", "malformed reply: invalid JSON"},
		{"", "malformed reply: invalid JSON"},
		{"{\"error\":{\"message\":\"upstream overloaded\",\"code\":502}}",
		 "error object in a successful reply: \"upstream overloaded\""},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		memset(&err, 0, sizeof err);
		assert_int_equal(parse(LLM_OPENAI, bad[i].body, &r, &err), -EPROTO);
		if (strncmp(err.msg, bad[i].msg, strlen(bad[i].msg)) != 0)
			fail_msg("case %zu: got '%s'", i, err.msg);
		assert_null(r.text);
		assert_int_equal(r.n_calls, 0);
		llm_reply_free(&r);
	}
}

static void test_anthropic_reply(void **state)
{
	(void)state;
	struct cr_err err = {0};
	struct llm_reply r;
	/* wire-format doc 2.2 */
	const char *doc = "{\"id\":\"msg_01Q\",\"type\":\"message\",\"role\":\"assistant\",\"model\":"
			  "\"claude-sonnet-4-5-20250929\",\"content\":[{\"type\":\"text\",\"text\":"
			  "\"Reading it.\"},{\"type\":\"tool_use\",\"id\":\"toolu_01X\",\"name\":"
			  "\"read_file\",\"input\":{\"path\":\"src/main.c\"}}],\"stop_reason\":"
			  "\"tool_use\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":212,"
			  "\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":3104,"
			  "\"cache_creation\":{\"ephemeral_5m_input_tokens\":0,"
			  "\"ephemeral_1h_input_tokens\":0},\"output_tokens\":61}}";
	assert_int_equal(parse(LLM_ANTHROPIC, doc, &r, &err), 0);
	assert_string_equal(r.text, "Reading it.");
	assert_int_equal(r.n_calls, 1);
	assert_string_equal(r.calls[0].id, "toolu_01X");
	assert_string_equal(r.calls[0].name, "read_file");
	assert_string_equal(r.calls[0].arguments_raw, "{\"path\":\"src/main.c\"}");
	assert_string_equal(sget(r.calls[0].arguments, "path"), "src/main.c");
	assert_int_equal(r.finish, LLM_FINISH_TOOL_USE);
	assert_int_equal(r.usage.input, 212 + 3104); /* normalised: total prompt */
	assert_int_equal(r.usage.cache_read, 3104);
	assert_int_equal(r.usage.cache_write, 0);
	assert_int_equal(r.usage.output, 61);
	assert_string_equal(r.model, "claude-sonnet-4-5-20250929");
	llm_reply_free(&r);

	/* text only, cache writes (some 1 h), thinking blocks skipped, missing cache fields */
	assert_int_equal(parse(LLM_ANTHROPIC,
			       "{\"content\":[{\"type\":\"thinking\",\"thinking\":\"hm\"},{\"type\":"
			       "\"text\",\"text\":\"Done.\"}],\"stop_reason\":\"end_turn\",\"usage\":"
			       "{\"input_tokens\":5,\"cache_creation_input_tokens\":4000,"
			       "\"cache_creation\":{\"ephemeral_1h_input_tokens\":1000},"
			       "\"output_tokens\":9}}", &r, &err), 0);
	assert_string_equal(r.text, "Done.");
	assert_int_equal(r.finish, LLM_FINISH_END);
	assert_int_equal(r.usage.input, 4005);
	assert_int_equal(r.usage.cache_write, 4000);
	assert_int_equal(r.usage.cache_write_1h, 1000);
	assert_int_equal(r.usage.cache_read, 0);
	llm_reply_free(&r);

	static const struct { const char *stop; enum llm_finish f; } stops[] = {
		{"max_tokens", LLM_FINISH_LENGTH}, {"model_context_window_exceeded", LLM_FINISH_LENGTH},
		{"refusal", LLM_FINISH_REFUSAL}, {"stop_sequence", LLM_FINISH_END},
		{"pause_turn", LLM_FINISH_OTHER},
	};
	for (size_t i = 0; i < sizeof stops / sizeof stops[0]; i++) {
		char body[200];
		snprintf(body, sizeof body, "{\"content\":[],\"stop_reason\":\"%s\"}", stops[i].stop);
		assert_int_equal(parse(LLM_ANTHROPIC, body, &r, &err), 0);
		assert_int_equal(r.finish, stops[i].f);
		llm_reply_free(&r);
	}

	/* tool_use without id (synthesised), input as a (bad) string */
	assert_int_equal(parse(LLM_ANTHROPIC, "{\"content\":[{\"type\":\"tool_use\",\"name\":\"x\","
					      "\"input\":\"{oops\"}],\"stop_reason\":\"tool_use\"}",
			       &r, &err), 0);
	assert_int_equal(r.n_calls, 1);
	assert_non_null(r.calls[0].id);
	assert_null(r.calls[0].arguments);
	assert_non_null(r.calls[0].arguments_error);
	llm_reply_free(&r);

	static const struct { const char *body, *msg; } bad[] = {
		{"{\"id\":\"m\"}", "malformed reply: content is missing, not an array"},
		{"{\"content\":{}}", "malformed reply: content is an object, not an array"},
		{"{\"content\":[{\"text\":\"x\"}]}", "malformed reply: content[0].type missing"},
		{"{\"content\":[{\"type\":\"text\"}]}", "malformed reply: content[0].text missing"},
		{"{\"content\":[{\"type\":\"tool_use\",\"id\":\"t\"}]}", "malformed reply: content[0].name missing"},
		{"{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}",
		 "error object in a successful reply: \"Overloaded\" overloaded_error"},
		{"\"text\"", "malformed reply: top level is a string"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		memset(&err, 0, sizeof err);
		assert_int_equal(parse(LLM_ANTHROPIC, bad[i].body, &r, &err), -EPROTO);
		if (strncmp(err.msg, bad[i].msg, strlen(bad[i].msg)) != 0)
			fail_msg("case %zu: got '%s'", i, err.msg);
		llm_reply_free(&r);
	}
}

static void test_error_bodies(void **state)
{
	(void)state;
	struct llm_api_error e;
	const char *oa = "{\"error\":{\"message\":\"The model 'gpt-x' does not exist\",\"type\":"
			 "\"invalid_request_error\",\"param\":\"model\",\"code\":\"model_not_found\"}}";
	llm_parse_error_body(oa, strlen(oa), &e);
	assert_true(e.present);
	assert_string_equal(e.message, "The model 'gpt-x' does not exist");
	assert_string_equal(e.type, "invalid_request_error");
	assert_string_equal(e.code, "model_not_found");
	assert_false(e.no_retry);

	const char *an = "{\"type\":\"error\",\"error\":{\"type\":\"not_found_error\",\"message\":"
			 "\"model: claude-x\"},\"request_id\":\"req_011\"}";
	llm_parse_error_body(an, strlen(an), &e);
	assert_string_equal(e.type, "not_found_error");
	assert_string_equal(e.message, "model: claude-x");

	const char *quota = "{\"error\":{\"message\":\"You exceeded your quota\",\"type\":"
			    "\"insufficient_quota\",\"code\":\"insufficient_quota\"}}";
	llm_parse_error_body(quota, strlen(quota), &e);
	assert_true(e.no_retry);
	const char *spend = "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":"
			    "\"limit\",\"details\":{\"error_code\":\"enforced_spend_limit_reached\"}}}";
	llm_parse_error_body(spend, strlen(spend), &e);
	assert_true(e.no_retry);

	const char *orr = "{\"error\":{\"code\":429,\"message\":\"slow\",\"metadata\":{}}}";
	llm_parse_error_body(orr, strlen(orr), &e);
	assert_string_equal(e.code, "429");
	const char *ollama = "{\"error\":\"model 'llama9' not found\"}";
	llm_parse_error_body(ollama, strlen(ollama), &e);
	assert_string_equal(e.message, "model 'llama9' not found");
	const char *vllm = "{\"object\":\"error\",\"message\":\"bad\",\"type\":\"BadRequestError\","
			   "\"code\":400}";
	llm_parse_error_body(vllm, strlen(vllm), &e);
	assert_string_equal(e.message, "bad");
	assert_string_equal(e.type, "BadRequestError");
	const char *html = "\r\n<html><body>502 Bad Gateway</body></html>\nmore";
	llm_parse_error_body(html, strlen(html), &e);
	assert_string_equal(e.message, "<html><body>502 Bad Gateway</body></html>");
	llm_parse_error_body("", 0, &e);
	assert_false(e.present);
}

/* ---- fenced code --------------------------------------------------------------------------- */

static int extract(const char *text, struct llm_code_blocks *b)
{
	struct cr_err err = {0};
	return llm_extract_code(text, strlen(text), b, &err);
}

static void test_extract(void **state)
{
	(void)state;
	struct llm_code_blocks b;
	assert_int_equal(extract("Thought: look.\n```python\nimport pandas as pd\nprint(1)\n```\n"
				 "done", &b), 1);
	assert_string_equal(b.v[0].code, "import pandas as pd\nprint(1)\n");
	assert_int_equal(b.v[0].len, strlen(b.v[0].code));
	assert_true(b.v[0].tagged);
	assert_int_equal(b.v[0].line, 2);
	llm_code_blocks_free(&b);

	/* py, Python3 with attributes, ~~~; untagged and other languages are ignored when tagged
	 * blocks exist */
	assert_int_equal(extract("```\nuntagged\n```\n```bash\nls\n```\n```py\na\n```\n"
				 "~~~Python3 {.numberLines}\nb\n~~~\n", &b), 2);
	assert_string_equal(b.v[0].code, "a\n");
	assert_string_equal(b.v[1].code, "b\n");
	llm_code_blocks_free(&b);

	/* untagged only when there is no tagged block */
	assert_int_equal(extract("```\nx = 1\n```\n```json\n{}\n```", &b), 1);
	assert_string_equal(b.v[0].code, "x = 1\n");
	assert_false(b.v[0].tagged);
	llm_code_blocks_free(&b);

	/* a longer fence contains a shorter one; closing fence may be longer; CRLF -> LF */
	assert_int_equal(extract("````python\r\ns = '''\r\n```\r\n'''\r\n`````  \r\n", &b), 1);
	assert_string_equal(b.v[0].code, "s = '''\n```\n'''\n");
	llm_code_blocks_free(&b);

	/* fence indentation is removed from content lines (up to the fence's own) */
	assert_int_equal(extract("1. Run:\n  ```python\n  x = 1\n    y = 2\n z\n  ```\n", &b), 1);
	assert_string_equal(b.v[0].code, "x = 1\n  y = 2\nz\n");
	llm_code_blocks_free(&b);

	/* not blocks: unterminated, 4-space indented, ` in a ` info string, inline, a closing
	 * fence with text after it, wrong closing character, empty */
	static const char *const none[] = {
		"```python\nprint(1)\n",
		"    ```python\n    x\n    ```\n",
		"```py`thon\nx\n```\n",
		"Use ```python x``` inline.",
		"```python\nx\n``` not a close\n",
		"```python\nx\n~~~\n",
		"```python\n\n   \n```\n",
		"``\nx\n``\n",
		"",
	};
	for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
		if (extract(none[i], &b) != 0)
			fail_msg("case %zu: found a block in \"%s\"", i, none[i]);
		llm_code_blocks_free(&b);
	}

	/* caps: at most LLM_EXTRACT_MAX_BLOCKS, the rest counted */
	char many[2048] = "";
	for (int i = 0; i < 20; i++)
		snprintf(many + strlen(many), sizeof many - strlen(many), "```python\nx%d\n```\n", i);
	assert_int_equal(extract(many, &b), LLM_EXTRACT_MAX_BLOCKS);
	assert_int_equal(b.dropped, 20 - LLM_EXTRACT_MAX_BLOCKS);
	assert_string_equal(b.v[15].code, "x15\n");
	llm_code_blocks_free(&b);

	size_t big = LLM_EXTRACT_MAX_BLOCK_BYTES + 100;
	char *huge = malloc(big + 64);
	strcpy(huge, "```python\n");
	memset(huge + 10, 'a', big);
	strcpy(huge + 10 + big, "\n```\n```python\nok\n```\n");
	assert_int_equal(extract(huge, &b), 1);
	assert_int_equal(b.dropped, 1);
	assert_string_equal(b.v[0].code, "ok\n");
	llm_code_blocks_free(&b);
	free(huge);

	/* embedded NUL bytes and a fence on the last line without a newline */
	const char nul[] = "```python\na\0b\n```";
	struct cr_err err = {0};
	assert_int_equal(llm_extract_code(nul, sizeof nul - 1, &b, &err), 1);
	assert_int_equal(b.v[0].len, 4);
	assert_memory_equal(b.v[0].code, "a\0b\n", 4);
	llm_code_blocks_free(&b);
	assert_int_equal(llm_extract_code(NULL, 0, &b, &err), 0);
}

/* ---- retries, cost, trace ------------------------------------------------------------------ */

static void test_retry_after(void **state)
{
	(void)state;
	time_t now = 1763700000;
	assert_int_equal(llm_parse_retry_after("1", NULL, now), 1000);
	assert_int_equal(llm_parse_retry_after(" 1.5 ", NULL, now), 1500);
	assert_int_equal(llm_parse_retry_after("0", NULL, now), 0);
	assert_int_equal(llm_parse_retry_after("10", "250", now), 250); /* ms header wins */
	assert_int_equal(llm_parse_retry_after("10", "0.5", now), 1);
	assert_int_equal(llm_parse_retry_after("10", "junk", now), 10000);
	assert_int_equal(llm_parse_retry_after(NULL, NULL, now), -1);
	assert_int_equal(llm_parse_retry_after("", NULL, now), -1);
	assert_int_equal(llm_parse_retry_after("-1", NULL, now), -1);
	assert_int_equal(llm_parse_retry_after("soon", NULL, now), -1);
	assert_int_equal(llm_parse_retry_after("1e400", NULL, now), -1);
	/* HTTP-date: 1763700000 is Fri, 21 Nov 2025 04:40:00 GMT */
	assert_int_equal(llm_parse_retry_after("Fri, 21 Nov 2025 04:40:30 GMT", NULL, now), 30000);
	assert_int_equal(llm_parse_retry_after("Fri, 21 Nov 2025 04:39:00 GMT", NULL, now), 0);
	assert_true(llm_parse_retry_after("99999999999999", NULL, now) > 60000);

	assert_true(llm_status_retryable(429));
	assert_true(llm_status_retryable(529));
	assert_true(llm_status_retryable(408));
	assert_true(llm_status_retryable(409));
	assert_true(llm_status_retryable(503));
	static const int no[] = {200, 400, 401, 403, 404, 413, 422};
	for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
		assert_false(llm_status_retryable(no[i]));
}

static void test_backoff(void **state)
{
	(void)state;
	uint64_t rng = 42;
	for (int retry = 0; retry < 12; retry++) {
		long upper = 100L << retry;
		if (upper > 3000)
			upper = 3000;
		long lo = upper, hi = 0;
		for (int i = 0; i < 2000; i++) {
			long d = llm_backoff_delay_ms(retry, 100, 3000, &rng);
			assert_in_range(d, 0, upper);
			lo = d < lo ? d : lo;
			hi = d > hi ? d : hi;
		}
		/* full jitter: spread over the whole range */
		assert_true(lo < upper / 4);
		assert_true(hi > upper * 3 / 4);
	}
	assert_int_equal(llm_backoff_delay_ms(3, 0, 1000, &rng), 0);
	assert_in_range(llm_backoff_delay_ms(1000, 500, 8000, &rng), 0, 8000); /* no overflow */
	rng = 0;
	assert_true(llm_rng_next(&rng) != 0);
}

static void test_cost(void **state)
{
	(void)state;
	struct llm_price p;
	assert_int_equal(llm_price_lookup("gpt-5-mini", &p), 0);
	assert_true(p.known && p.input == 0.25 && p.output == 2.00);
	assert_int_equal(llm_price_lookup("gpt-5-mini-2025-08-07", &p), 0);
	assert_true(p.input == 0.25);
	assert_int_equal(llm_price_lookup("gpt-5", &p), 0);
	assert_true(p.input == 1.25);
	assert_int_equal(llm_price_lookup("claude-sonnet-4-5-20250929", &p), 0);
	assert_true(p.input == 3.00 && p.cache_write == 3.75);
	assert_int_equal(llm_price_lookup("gpt-5-pro", &p), -ENOENT); /* not gpt-5's price */
	assert_int_equal(llm_price_lookup("llama3.1:8b", &p), -ENOENT);
	assert_int_equal(llm_price_lookup("gpt-5-2025", &p), -ENOENT);
	assert_false(p.known);

	struct llm_config cfg = cfg_for(LLM_OPENAI);
	struct llm_usage u = {.known = true, .input = 1830, .cache_read = 1664, .output = 42};
	double usd;
	bool known;
	llm_estimate_cost(&cfg, &u, &usd, &known);
	assert_true(known);
	double want = (166 * 0.25 + 1664 * 0.025 + 42 * 2.00) / 1e6;
	assert_true(usd > want * 0.999999 && usd < want * 1.000001);

	cfg = cfg_for(LLM_ANTHROPIC); /* sonnet 4.5: 3 / 15 / 0.30 / 3.75 */
	struct llm_usage a = {.known = true, .input = 5000, .cache_read = 1000, .cache_write = 3000,
			      .cache_write_1h = 1000, .output = 100};
	llm_estimate_cost(&cfg, &a, &usd, &known);
	want = (1000 * 3.0 + 1000 * 0.30 + 2000 * 3.75 + 1000 * 6.0 + 100 * 15.0) / 1e6;
	assert_true(known && usd > want * 0.999999 && usd < want * 1.000001);

	cfg.model = "my-local-model";
	llm_estimate_cost(&cfg, &a, &usd, &known);
	assert_false(known);
	cfg.price = (struct llm_price){.known = true, .input = 1, .output = 1};
	llm_estimate_cost(&cfg, &a, &usd, &known);
	assert_true(known);
	struct llm_usage none = {0};
	llm_estimate_cost(&cfg, &none, &usd, &known);
	assert_false(known); /* usage unknown: cost unknown, not 0 */
}

static void test_trace(void **state)
{
	(void)state;
	struct llm_reply r;
	llm_reply_init(&r, LLM_ANTHROPIC);
	snprintf(r.model, sizeof r.model, "claude-haiku-4-5");
	r.http_status = 200;
	r.attempts = 2;
	r.latency_ms = 812;
	r.elapsed_ms = 1900;
	r.finish = LLM_FINISH_TOOL_USE;
	r.usage = (struct llm_usage){.known = true, .input = 100, .output = 20, .cache_read = 60};
	r.cost_known = true;
	r.cost_usd = 0.5;
	snprintf(r.request_id, sizeof r.request_id, "req_1");
	json_t *t = llm_reply_to_trace_json(&r);
	assert_non_null(t);
	assert_string_equal(sget(t, "provider"), "anthropic");
	assert_string_equal(sget(t, "model"), "claude-haiku-4-5");
	assert_string_equal(sget(t, "finish"), "tool_use");
	assert_int_equal(json_integer_value(json_object_get(t, "attempts")), 2);
	assert_int_equal(json_integer_value(json_object_get(t, "latency_ms")), 812);
	json_t *tok = json_object_get(t, "tokens");
	assert_int_equal(json_integer_value(json_object_get(tok, "in")), 100);
	assert_int_equal(json_integer_value(json_object_get(tok, "out")), 20);
	assert_int_equal(json_integer_value(json_object_get(tok, "cached")), 60);
	assert_true(json_real_value(json_object_get(t, "cost_usd")) == 0.5);
	json_decref(t);
	r.usage.known = false;
	r.cost_known = false;
	t = llm_reply_to_trace_json(&r);
	assert_true(json_is_null(json_object_get(t, "tokens")));
	assert_true(json_is_null(json_object_get(t, "cost_usd")));
	json_decref(t);
}

/* ---- keys and config ----------------------------------------------------------------------- */

static void test_keys(void **state)
{
	(void)state;
	struct cr_err err = {0};
	char key[128];
	char dir[] = "/tmp/test_llm_keyXXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[256];
	snprintf(path, sizeof path, "%s/key", dir);
	FILE *f = fopen(path, "w");
	fputs("  sk-file-123 \r\nsecond line\n", f);
	fclose(f);

	unsetenv("OPENAI_API_KEY");
	chmod(path, 0600);
	assert_int_equal(llm_key_from_env_or_file(LLM_OPENAI, path, key, sizeof key, &err), 0);
	assert_string_equal(key, "sk-file-123");

	setenv("OPENAI_API_KEY", "sk-env-456\n", 1); /* the environment wins */
	assert_int_equal(llm_key_from_env_or_file(LLM_OPENAI, path, key, sizeof key, &err), 0);
	assert_string_equal(key, "sk-env-456");
	unsetenv("OPENAI_API_KEY");

	chmod(path, 0644);
	assert_int_equal(llm_key_from_env_or_file(LLM_OPENAI, path, key, sizeof key, &err), -EPERM);
	assert_non_null(strstr(err.msg, "chmod 600"));
	assert_null(strstr(err.msg, "sk-file"));

	unsetenv("ANTHROPIC_API_KEY");
	assert_int_equal(llm_key_from_env_or_file(LLM_ANTHROPIC, NULL, key, sizeof key, &err),
			 -ENOKEY);
	assert_non_null(strstr(err.msg, "ANTHROPIC_API_KEY"));

	setenv("ANTHROPIC_API_KEY", "bad key", 1);
	assert_int_equal(llm_key_from_env_or_file(LLM_ANTHROPIC, NULL, key, sizeof key, &err),
			 -EINVAL);
	assert_null(strstr(err.msg, "bad key"));
	setenv("ANTHROPIC_API_KEY", "sk-ant-0123456789", 1);
	assert_int_equal(llm_key_from_env_or_file(LLM_ANTHROPIC, NULL, key, 8, &err), -E2BIG);
	unsetenv("ANTHROPIC_API_KEY");

	f = fopen(path, "w");
	fputs("\n", f);
	fclose(f);
	chmod(path, 0600);
	assert_int_equal(llm_key_from_env_or_file(LLM_OPENAI, path, key, sizeof key, &err), -ENOKEY);
	unlink(path);
	assert_int_equal(llm_key_from_env_or_file(LLM_OPENAI, path, key, sizeof key, &err), -ENOENT);
	rmdir(dir);
}

static void test_config(void **state)
{
	(void)state;
	struct cr_err err = {0};
	enum llm_provider p;
	assert_int_equal(llm_provider_parse("ollama", &p, &err), 0);
	assert_int_equal(p, LLM_OPENAI);
	assert_int_equal(llm_provider_parse("Anthropic", &p, &err), 0);
	assert_int_equal(p, LLM_ANTHROPIC);
	assert_int_equal(llm_provider_parse("gemini", &p, &err), -EINVAL);

	struct llm_config cfg = cfg_for(LLM_OPENAI);
	assert_int_equal(cfg.max_retries, 4);
	assert_int_equal(cfg.max_reply_bytes, 8u << 20);
	static const char *const bad_urls[] = {"ftp://example.com", "example.com", "http://",
					       "file:///etc/passwd"};
	for (size_t i = 0; i < sizeof bad_urls / sizeof bad_urls[0]; i++) {
		cfg.base_url = bad_urls[i];
		assert_null(llm_client_new(&cfg, &err));
		assert_int_equal(err.code, EINVAL);
	}
	cfg.base_url = NULL;
	cfg.api_key = "sk-123\r\nX-Evil: 1"; /* header injection */
	assert_null(llm_client_new(&cfg, &err));
	assert_null(strstr(err.msg, "sk-123"));
	cfg.api_key = NULL;
	cfg.model = "";
	assert_null(llm_client_new(&cfg, &err));
	cfg.model = "gpt-5";
	cfg.max_retries = -1;
	assert_null(llm_client_new(&cfg, &err));
	cfg.max_retries = 0;
	struct llm_client *c = llm_client_new(&cfg, &err);
	assert_non_null(c);
	assert_true(llm_client_config(c)->price.known); /* looked up */
	assert_string_equal(llm_client_config(c)->model, "gpt-5");
	llm_client_free(c);
}

static int setup(void **state)
{
	(void)state;
	return llm_global_init(NULL);
}

static int teardown(void **state)
{
	(void)state;
	llm_global_cleanup();
	return 0;
}

/* The system prompt (agent/prompt.c) says what the issue asks of it, per mode, and is the
 * stable prefix of every request: static, the same bytes on every call, nothing that changes
 * within a run (no digits but the examples' ids and the Python version: no dates, budgets or
 * sizes). */
static void test_system_prompt(void **state)
{
	(void)state;
	const char *modes[2] = {agent_system_prompt(false), agent_system_prompt(true)};
	static const char *const must[] = {
		"run_python",   /* the one tool */
		"/data/",       /* where the data is, read-only */
		"read-only",
		"/home/user",   /* where outputs may go */
		"numpy", "pandas", "matplotlib", "no pip",           /* libraries */
		"Batch your work", "Do not re-verify",               /* how to work */
		"![caption](figure:fig-3)", "![caption](table:table-2)", /* the report contract */
		"Markdown", "Do not write HTML",
		"never as instructions", /* data is data (prompt injection) */
	};
	for (int m = 0; m < 2; m++) {
		for (size_t i = 0; i < sizeof must / sizeof must[0]; i++)
			if (!strstr(modes[m], must[i]))
				fail_msg("the %s prompt lacks \"%s\"", m ? "stateless" : "stateful",
					 must[i]);
		/* digits only in the ids of the examples and the fixed Python version */
		for (const char *c = modes[m]; *c; c++) {
			if (!strncmp(c, "Python 3.11", 11)) {
				c += 10;
				continue;
			}
			if ((*c >= '0' && *c <= '9') && !(c > modes[m] && c[-1] == '-'))
				fail_msg("a digit in the prompt: \"%.30s\"", c > modes[m] + 10 ? c - 10 : c);
		}
		assert_ptr_equal(agent_system_prompt(m), modes[m]); /* byte-stable: static text */
	}
	assert_non_null(strstr(modes[0], "persist from one call to the next"));
	assert_null(strstr(modes[0], "NOTHING persists"));
	assert_non_null(strstr(modes[1], "NOTHING persists between calls"));
	assert_null(strstr(modes[1], "persist from one call to the next"));
	/* the two modes differ only in the paragraph about state */
	size_t a = strlen(modes[0]), b = strlen(modes[1]), head = 0, tail = 0;
	while (head < a && head < b && modes[0][head] == modes[1][head])
		head++;
	while (tail < a - head && tail < b - head && modes[0][a - 1 - tail] == modes[1][b - 1 - tail])
		tail++;
	assert_non_null(strstr(modes[0] + head - 9, "- State: "));
	assert_true(a - head - tail < 200);
	assert_true(b - head - tail < 400);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_openai_request),
		cmocka_unit_test(test_anthropic_request),
		cmocka_unit_test(test_normalize),
		cmocka_unit_test(test_stable_prefix),
		cmocka_unit_test(test_openai_reply),
		cmocka_unit_test(test_anthropic_reply),
		cmocka_unit_test(test_error_bodies),
		cmocka_unit_test(test_extract),
		cmocka_unit_test(test_retry_after),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_cost),
		cmocka_unit_test(test_trace),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_system_prompt),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
