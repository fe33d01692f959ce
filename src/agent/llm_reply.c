/* agent/llm_reply.c -- the reply object, parser dispatch, error bodies, shared parser helpers. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/llm_priv.h"
#include "agent/llm_wire.h"
#include "core/json.h"

void llm_reply_init(struct llm_reply *r, enum llm_provider p)
{
	memset(r, 0, sizeof *r);
	r->provider = p;
}

static void calls_free(struct llm_reply *r)
{
	for (size_t i = 0; i < r->n_calls; i++) {
		struct llm_reply_call *c = &r->calls[i];
		free(c->id);
		free(c->name);
		free(c->arguments_raw);
		free(c->arguments_error);
		json_decref(c->arguments);
	}
	free(r->calls);
	r->calls = NULL;
	r->n_calls = 0;
}

void llm_reply_free(struct llm_reply *r)
{
	if (!r)
		return;
	calls_free(r);
	free(r->text);
	free(r->refusal);
	enum llm_provider p = r->provider;
	llm_reply_init(r, p);
}

int llm_parse_reply(enum llm_provider p, const char *body, size_t len, unsigned long *id_seq,
		    struct llm_reply *r, struct cr_err *err)
{
	json_error_t je;
	json_t *root = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (!root)
		return llm_p_malformed(err, "invalid JSON at line %d column %d: %s", je.line,
				       je.column, je.text);
	int rc = p == LLM_ANTHROPIC ? llm_anthropic_parse(root, id_seq, r, err)
				    : llm_openai_parse(root, id_seq, r, err);
	json_decref(root);
	if (rc < 0) { /* all or nothing: no half-parsed reply */
		calls_free(r);
		free(r->text);
		free(r->refusal);
		r->text = r->refusal = NULL;
		memset(&r->usage, 0, sizeof r->usage);
	}
	return rc;
}

/* ---- helpers for the parsers --------------------------------------------------------------- */

int llm_p_malformed(struct cr_err *err, const char *fmt, ...)
{
	char tmp[CR_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	return cr_failx(err, EPROTO, "malformed reply: %s", tmp);
}

const char *llm_p_type(const json_t *j)
{
	if (!j)
		return "missing";
	switch (json_typeof(j)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER:
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	default: return "null";
	}
}

uint64_t llm_p_u64(const json_t *o, const char *key)
{
	json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;
	if (json_is_integer(v) && json_integer_value(v) > 0)
		return (uint64_t)json_integer_value(v);
	if (json_is_real(v) && json_real_value(v) > 0 && json_real_value(v) < 1e18)
		return (uint64_t)json_real_value(v);
	return 0;
}

int llm_p_append(struct cr_buf *b, const char *s, struct cr_err *err)
{
	if (cr_buf_puts(b, s) < 0)
		return cr_fail(err, ENOMEM, "reply text");
	return 0;
}

char *llm_p_buf_take(struct cr_buf *b)
{
	if (!b->data && cr_buf_append(b, "", 0) < 0)
		return NULL;
	return cr_buf_steal(b, NULL);
}

static void error_from_json(const json_t *root, struct llm_api_error *out);

int llm_p_error_in_reply(const json_t *root, struct cr_err *err)
{
	struct llm_api_error e;
	memset(&e, 0, sizeof e);
	error_from_json(root, &e);
	char q[160];
	llm_quote(q, sizeof q, e.message);
	return cr_failx(err, EPROTO, "error object in a successful reply: %s%s%s", q,
			e.type[0] ? " " : "", e.type);
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

int llm_p_add_call(struct llm_reply *r, const char *id, const char *name, const json_t *args,
		   unsigned long *id_seq, struct cr_err *err)
{
	size_t n = r->n_calls;
	if (n == 0 || (n >= 4 && (n & (n - 1)) == 0)) { /* capacity: 4, 8, 16, ... */
		struct llm_reply_call *v = realloc(r->calls, (n ? n * 2 : 4) * sizeof *v);
		if (!v)
			return cr_fail(err, ENOMEM, "reply");
		r->calls = v;
	}
	struct llm_reply_call *v = r->calls;
	struct llm_reply_call *c = &v[r->n_calls];
	memset(c, 0, sizeof *c);
	r->n_calls++; /* from here on, llm_reply_free releases whatever was filled */

	char synth[48];
	if (!id || !*id) {
		unsigned long k = id_seq ? ++*id_seq : (unsigned long)r->n_calls;
		snprintf(synth, sizeof synth, "call_corral_%lu", k);
		id = synth;
	}
	c->id = dup_or_null(id);
	c->name = dup_or_null(name);
	if (!c->id || !c->name)
		return cr_fail(err, ENOMEM, "reply");

	if (json_is_string(args)) {
		c->arguments_raw = dup_or_null(json_string_value(args));
		if (!c->arguments_raw)
			return cr_fail(err, ENOMEM, "reply");
		if (llm_args_parse(c->arguments_raw, &c->arguments, &c->arguments_error) < 0)
			return cr_fail(err, ENOMEM, "reply");
		return 0;
	}
	if (!args || json_is_null(args)) {
		c->arguments_raw = strdup("");
		c->arguments = json_object();
	} else { /* an object (Ollama native, some llama.cpp builds, Anthropic `input`) */
		c->arguments_raw = json_dumps(args, LLM_JSON_FLAGS | JSON_ENCODE_ANY);
		if (json_is_object(args)) {
			c->arguments = json_deep_copy(args);
		} else {
			char msg[160];
			snprintf(msg, sizeof msg,
				 "error: tool arguments must be a JSON object, got %s; call the "
				 "tool again with one JSON object",
				 llm_p_type(args));
			c->arguments_error = strdup(msg);
			if (!c->arguments_raw || !c->arguments_error)
				return cr_fail(err, ENOMEM, "reply");
			return 0;
		}
	}
	if (!c->arguments_raw || !c->arguments)
		return cr_fail(err, ENOMEM, "reply");
	return 0;
}

/* ---- error bodies -------------------------------------------------------------------------- */

static void copy_str(char *dst, size_t dstsz, const json_t *v)
{
	if (json_is_string(v))
		snprintf(dst, dstsz, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(dst, dstsz, "%lld", (long long)json_integer_value(v));
}

static void error_from_json(const json_t *root, struct llm_api_error *out)
{
	json_t *e = json_object_get(root, "error");
	const json_t *src = json_is_object(e) ? e : root;
	if (json_is_string(e))
		copy_str(out->message, sizeof out->message, e);
	else
		copy_str(out->message, sizeof out->message, json_object_get(src, "message"));
	if (!out->message[0])
		copy_str(out->message, sizeof out->message, json_object_get(root, "detail"));
	copy_str(out->type, sizeof out->type, json_object_get(src, "type"));
	if (!strcmp(out->type, "error")) /* Anthropic's top level when error isn't an object */
		out->type[0] = '\0';
	copy_str(out->code, sizeof out->code, json_object_get(src, "code"));
	json_t *det = json_object_get(src, "details");
	char ec[64] = "";
	copy_str(ec, sizeof ec, json_object_get(det, "error_code"));
	out->no_retry = !strcmp(out->code, "insufficient_quota") ||
			!strcmp(out->type, "insufficient_quota") ||
			!strcmp(ec, "enforced_spend_limit_reached");
	out->present = out->message[0] || out->type[0] || out->code[0];
}

void llm_parse_error_body(const char *body, size_t len, struct llm_api_error *out)
{
	memset(out, 0, sizeof *out);
	json_t *root = len ? json_loadb(body, len, 0, NULL) : NULL;
	if (json_is_object(root)) {
		error_from_json(root, out);
		json_decref(root);
		return;
	}
	json_decref(root);
	/* Not JSON: the first non-blank line (an HTML error page, a proxy's text). */
	size_t i = 0;
	while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n'))
		i++;
	size_t j = i;
	while (j < len && body[j] != '\n' && body[j] != '\r' && body[j] != '\0')
		j++;
	size_t n = j - i;
	if (n >= sizeof out->message)
		n = sizeof out->message - 1;
	memcpy(out->message, body + i, n);
	out->message[n] = '\0';
	out->present = n > 0;
}
