/* agent/llm_conv.c -- the provider-neutral conversation, its normalised view, tool helpers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/llm.h"
#include "agent/llm_priv.h"
#include "agent/llm_wire.h"
#include "core/log.h"
#include "core/text.h"

const struct llm_tool llm_tool_run_python = {
	.name = "run_python",
	.description = "Run Python 3 code in the analysis sandbox. State (variables, imports, "
		       "files) persists between calls. Returns stdout, stderr and the value of "
		       "the last expression. Save figures and tables under /output.",
	.parameters = "{\"type\":\"object\",\"properties\":{\"code\":{\"type\":\"string\","
		      "\"description\":\"Python source to run\"}},\"required\":[\"code\"]}",
};

/* ---- UTF-8 --------------------------------------------------------------------------------- */

static size_t lead_len(unsigned char c)
{
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		return 2;
	if (c >= 0xE0 && c <= 0xEF)
		return 3;
	if (c >= 0xF0 && c <= 0xF4)
		return 4;
	return 0;
}

char *llm_utf8_sanitize(const char *s, size_t len)
{
	if (cr_utf8_valid(s, len) && !memchr(s, '\0', len)) {
		char *p = malloc(len + 1);
		if (p) {
			memcpy(p, s, len);
			p[len] = '\0';
		}
		return p;
	}
	/* Worst case: every byte becomes the 3-byte U+FFFD. */
	if (len > (SIZE_MAX - 1) / 3)
		return NULL;
	char *p = malloc(len * 3 + 1);
	if (!p)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < len;) {
		size_t k = lead_len((unsigned char)s[i]);
		if (s[i] != '\0' && k && i + k <= len && cr_utf8_valid(s + i, k)) {
			memcpy(p + o, s + i, k);
			o += k;
			i += k;
		} else {
			memcpy(p + o, "\xEF\xBF\xBD", 3);
			o += 3;
			i++;
		}
	}
	p[o] = '\0';
	return p;
}

static char *dup_text(const char *s)
{
	return s ? llm_utf8_sanitize(s, strlen(s)) : NULL;
}

void llm_copy_clip(char *dst, size_t dstsz, const char *src)
{
	if (!dstsz)
		return;
	size_t n = src ? strlen(src) : 0;
	if (n >= dstsz)
		n = cr_utf8_clip(src, dstsz - 1);
	if (n)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

void llm_quote(char *out, size_t outsz, const char *s)
{
	cr_log_quote(out, outsz, s ? s : "", s ? strlen(s) : 0);
}

/* ---- conversation -------------------------------------------------------------------------- */

struct llm_conv *llm_conv_new(void)
{
	return calloc(1, sizeof(struct llm_conv));
}

static void msg_free(struct llm_msg *m)
{
	free(m->text);
	free(m->tool_call_id);
	for (size_t i = 0; i < m->n_calls; i++) {
		free((char *)m->calls[i].id);
		free((char *)m->calls[i].name);
		free((char *)m->calls[i].arguments);
	}
	free(m->calls);
	memset(m, 0, sizeof *m);
}

void llm_conv_truncate(struct llm_conv *c, size_t n)
{
	if (!c)
		return;
	while (c->n > n)
		msg_free(&c->msgs[--c->n]);
}

void llm_conv_free(struct llm_conv *c)
{
	if (!c)
		return;
	llm_conv_truncate(c, 0);
	free(c->msgs);
	free(c);
}

/* Takes ownership of m's members (freed on failure too). */
static int push(struct llm_conv *c, struct llm_msg *m, struct cr_err *err)
{
	if (c->n == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 16;
		struct llm_msg *v = realloc(c->msgs, ncap * sizeof *v);
		if (!v) {
			msg_free(m);
			return cr_fail(err, ENOMEM, "conversation");
		}
		c->msgs = v;
		c->cap = ncap;
	}
	c->msgs[c->n++] = *m;
	return 0;
}

static int add_text(struct llm_conv *c, enum llm_role role, const char *text,
		    struct cr_err *err)
{
	if (!c || !text)
		return cr_failx(err, EINVAL, "llm conv: NULL text");
	struct llm_msg m = {.role = role, .text = dup_text(text)};
	if (!m.text)
		return cr_fail(err, ENOMEM, "conversation");
	return push(c, &m, err);
}

int llm_conv_add_system(struct llm_conv *c, const char *text, struct cr_err *err)
{
	return add_text(c, LLM_ROLE_SYSTEM, text, err);
}

int llm_conv_add_user(struct llm_conv *c, const char *text, struct cr_err *err)
{
	return add_text(c, LLM_ROLE_USER, text, err);
}

int llm_conv_add_assistant(struct llm_conv *c, const char *text,
			   const struct llm_tool_call *calls, size_t n_calls, struct cr_err *err)
{
	if (!c || (n_calls && !calls))
		return cr_failx(err, EINVAL, "llm conv: bad assistant turn");
	struct llm_msg m = {.role = LLM_ROLE_ASSISTANT};
	if (text && !(m.text = dup_text(text)))
		return cr_fail(err, ENOMEM, "conversation");
	if (n_calls) {
		m.calls = calloc(n_calls, sizeof *m.calls);
		if (!m.calls) {
			msg_free(&m);
			return cr_fail(err, ENOMEM, "conversation");
		}
		m.n_calls = n_calls;
		for (size_t i = 0; i < n_calls; i++) {
			if (!calls[i].id || !calls[i].name) {
				msg_free(&m);
				return cr_failx(err, EINVAL, "llm conv: tool call without id or name");
			}
			m.calls[i].id = dup_text(calls[i].id);
			m.calls[i].name = dup_text(calls[i].name);
			m.calls[i].arguments = dup_text(calls[i].arguments ? calls[i].arguments : "");
			if (!m.calls[i].id || !m.calls[i].name || !m.calls[i].arguments) {
				msg_free(&m);
				return cr_fail(err, ENOMEM, "conversation");
			}
		}
	}
	return push(c, &m, err);
}

int llm_conv_add_tool_result(struct llm_conv *c, const char *tool_call_id, const char *text,
			     bool is_error, struct cr_err *err)
{
	if (!c || !tool_call_id || !text)
		return cr_failx(err, EINVAL, "llm conv: tool result without id or text");
	struct llm_msg m = {.role = LLM_ROLE_TOOL, .is_error = is_error};
	m.tool_call_id = dup_text(tool_call_id);
	m.text = dup_text(text);
	if (!m.tool_call_id || !m.text) {
		msg_free(&m);
		return cr_fail(err, ENOMEM, "conversation");
	}
	return push(c, &m, err);
}

int llm_conv_add_reply(struct llm_conv *c, const struct llm_reply *r, struct cr_err *err)
{
	if (!r || !r->text)
		return cr_failx(err, EINVAL, "llm conv: the reply holds no answer");
	struct llm_tool_call stack[8] = {{0}}, *calls = stack;
	if (r->n_calls > 8 && !(calls = calloc(r->n_calls, sizeof *calls)))
		return cr_fail(err, ENOMEM, "conversation");
	for (size_t i = 0; i < r->n_calls; i++) {
		calls[i].id = r->calls[i].id;
		calls[i].name = r->calls[i].name;
		calls[i].arguments = r->calls[i].arguments_raw;
	}
	int rc = llm_conv_add_assistant(c, r->text && *r->text ? r->text : NULL, calls, r->n_calls,
					err);
	if (calls != stack)
		free(calls);
	return rc;
}

/* ---- normalised view ----------------------------------------------------------------------- */

int llm_conv_normalize(const struct llm_conv *c, struct llm_norm_msg **out, size_t *n_out,
		       struct cr_err *err)
{
	*out = NULL;
	*n_out = 0;
	size_t cap = 0;
	for (size_t i = 0; i < c->n; i++)
		cap += 1 + c->msgs[i].n_calls;
	struct llm_norm_msg *v = calloc(cap ? cap : 1, sizeof *v);
	bool *used = calloc(c->n ? c->n : 1, sizeof *used);
	if (!v || !used) {
		free(v);
		free(used);
		return cr_fail(err, ENOMEM, "conversation");
	}
	size_t n = 0;
#define PUT(msg)                                                                              \
	(v[n++] = (struct llm_norm_msg){.role = (msg)->role, .text = (msg)->text,              \
					.calls = (msg)->calls, .n_calls = (msg)->n_calls,      \
					.tool_call_id = (msg)->tool_call_id,                   \
					.is_error = (msg)->is_error})
	for (size_t i = 0; i < c->n;) {
		const struct llm_msg *m = &c->msgs[i];
		if (m->role == LLM_ROLE_TOOL) { /* answers no open call */
			cr_log(CR_LOG_DEBUG, "llm: dropping a tool result that answers no call");
			i++;
			continue;
		}
		if (m->role != LLM_ROLE_ASSISTANT || m->n_calls == 0) {
			PUT(m);
			i++;
			continue;
		}
		PUT(m);
		size_t end = i + 1;
		while (end < c->n && c->msgs[end].role != LLM_ROLE_ASSISTANT)
			end++;
		for (size_t k = 0; k < m->n_calls; k++) {
			const struct llm_msg *res = NULL;
			for (size_t j = i + 1; j < end && !res; j++) {
				const struct llm_msg *t = &c->msgs[j];
				if (t->role == LLM_ROLE_TOOL && !used[j] &&
				    strcmp(t->tool_call_id, m->calls[k].id) == 0) {
					used[j] = true;
					res = t;
				}
			}
			if (res) {
				PUT(res);
			} else {
				v[n++] = (struct llm_norm_msg){.role = LLM_ROLE_TOOL,
							       .text = LLM_SYNTH_RESULT,
							       .tool_call_id = m->calls[k].id,
							       .is_error = true,
							       .synthetic = true};
			}
		}
		for (size_t j = i + 1; j < end; j++) {
			if (c->msgs[j].role != LLM_ROLE_TOOL)
				PUT(&c->msgs[j]);
			else if (!used[j])
				cr_log(CR_LOG_DEBUG, "llm: dropping a tool result that answers no call");
		}
		i = end;
	}
#undef PUT
	free(used);
	*out = v;
	*n_out = n;
	return 0;
}

/* ---- tools and arguments ------------------------------------------------------------------- */

static bool tool_name_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '_' || ch == '-'))
			return false;
	}
	return true;
}

json_t *llm_tool_schema(const struct llm_tool *t, struct cr_err *err)
{
	if (!tool_name_ok(t->name)) {
		char q[80];
		llm_quote(q, sizeof q, t->name);
		cr_failx(err, EINVAL, "tool name %s must match [A-Za-z0-9_-]{1,64}", q);
		return NULL;
	}
	if (!t->parameters) {
		json_t *o = json_pack("{s:s,s:{}}", "type", "object", "properties");
		if (!o)
			cr_fail(err, ENOMEM, "tool schema");
		return o;
	}
	json_error_t je;
	json_t *o = json_loads(t->parameters, JSON_REJECT_DUPLICATES, &je);
	if (!o || !json_is_object(o)) {
		json_decref(o);
		cr_failx(err, EINVAL, "tool %s: parameters must be a JSON Schema object", t->name);
		return NULL;
	}
	return o;
}

json_t *llm_args_for_replay(const char *raw)
{
	if (raw && *raw) {
		json_t *o = json_loads(raw, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
		if (json_is_object(o))
			return o;
		json_decref(o);
	}
	return json_object();
}

int llm_args_parse(const char *raw, json_t **obj, char **why)
{
	*obj = NULL;
	*why = NULL;
	const char *p = raw ? raw : "";
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	if (!*p) { /* "" for a tool without arguments */
		*obj = json_object();
		return *obj ? 0 : -ENOMEM;
	}
	json_error_t je;
	json_t *o = json_loads(raw, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
	char msg[320];
	if (json_is_object(o)) {
		*obj = o;
		return 0;
	}
	if (o) {
		snprintf(msg, sizeof msg,
			 "error: tool arguments must be a JSON object, got %s; call the tool again "
			 "with an object such as {\"code\": \"...\"}",
			 llm_p_type(o));
		json_decref(o);
	} else {
		snprintf(msg, sizeof msg,
			 "error: tool arguments are not valid JSON (line %d, column %d: %s); call "
			 "the tool again with one JSON object",
			 je.line, je.column, je.text);
	}
	*why = llm_utf8_sanitize(msg, strlen(msg));
	return *why ? 0 : -ENOMEM;
}

char *llm_request_body(const struct llm_config *cfg, const struct llm_conv *conv,
		       const struct llm_tool *tools, size_t n_tools, struct cr_err *err)
{
	json_t *j = cfg->provider == LLM_ANTHROPIC
			    ? llm_anthropic_request(cfg, conv, tools, n_tools, err)
			    : llm_openai_request(cfg, conv, tools, n_tools, err);
	if (!j)
		return NULL;
	char *s = json_dumps(j, LLM_JSON_FLAGS);
	json_decref(j);
	if (!s)
		cr_fail(err, ENOMEM, "request body");
	return s;
}
