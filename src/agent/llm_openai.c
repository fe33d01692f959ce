/* agent/llm_openai.c -- OpenAI(-compatible) Chat Completions: request body and reply parser.
 * Wire format: ../shared/docs/llm-wire-formats.md section 1 (and 1.6 for local servers). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/llm_priv.h"
#include "agent/llm_wire.h"
#include "core/buf.h"

bool llm_openai_uses_max_completion(const struct llm_config *cfg)
{
	if (cfg->token_field == LLM_TOKENS_MAX_COMPLETION)
		return true;
	if (cfg->token_field == LLM_TOKENS_MAX)
		return false;
	const char *b = cfg->base_url;
	if (!b || !*b)
		return true;
	return strncmp(b, "https://api.openai.com", 22) == 0 && (b[22] == '\0' || b[22] == '/');
}

/* The raw arguments when they are a JSON object (echoed byte for byte), else "{}". */
static json_t *args_string(const char *raw)
{
	if (raw && *raw) {
		json_t *o = json_loads(raw, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
		bool ok = json_is_object(o);
		json_decref(o);
		if (ok)
			return json_string(raw);
	}
	return json_string("{}");
}

static json_t *message_json(const struct llm_config *cfg, const struct llm_norm_msg *m)
{
	json_t *o = NULL;
	switch (m->role) {
	case LLM_ROLE_SYSTEM:
		return json_pack("{s:s,s:s}", "role", "system", "content", m->text);
	case LLM_ROLE_USER:
		return json_pack("{s:s,s:s}", "role", "user", "content", m->text);
	case LLM_ROLE_TOOL:
		return json_pack("{s:s,s:s,s:s}", "role", "tool", "tool_call_id", m->tool_call_id,
				 "content", m->text);
	case LLM_ROLE_ASSISTANT:
		break;
	}
	json_t *content;
	if (m->text && (*m->text || m->n_calls == 0 || cfg->openai_empty_content))
		content = json_string(m->text);
	else if (m->n_calls == 0 || cfg->openai_empty_content)
		content = json_string("");
	else
		content = json_null();
	o = json_pack("{s:s,s:o}", "role", "assistant", "content", content);
	if (!o || m->n_calls == 0)
		return o;
	json_t *calls = json_array();
	if (!calls || json_object_set_new(o, "tool_calls", calls) < 0)
		goto fail;
	for (size_t i = 0; i < m->n_calls; i++) {
		const struct llm_tool_call *c = &m->calls[i];
		json_t *tc = json_pack("{s:s,s:s,s:{s:s,s:o}}", "id", c->id, "type", "function",
				       "function", "name", c->name, "arguments",
				       args_string(c->arguments));
		if (!tc || json_array_append_new(calls, tc) < 0)
			goto fail;
	}
	return o;
fail:
	json_decref(o);
	return NULL;
}

static json_t *tools_json(const struct llm_tool *tools, size_t n_tools, struct cr_err *err)
{
	json_t *arr = json_array();
	if (!arr) {
		cr_fail(err, ENOMEM, "request");
		return NULL;
	}
	for (size_t i = 0; i < n_tools; i++) {
		json_t *schema = llm_tool_schema(&tools[i], err);
		if (!schema)
			goto fail;
		json_t *fn = json_pack("{s:s}", "name", tools[i].name);
		if (fn && tools[i].description)
			json_object_set_new(fn, "description", json_string(tools[i].description));
		if (!fn || json_object_set_new(fn, "parameters", schema) < 0) {
			json_decref(fn);
			cr_fail(err, ENOMEM, "request");
			goto fail;
		}
		json_t *t = json_pack("{s:s,s:o}", "type", "function", "function", fn);
		if (!t || json_array_append_new(arr, t) < 0) {
			cr_fail(err, ENOMEM, "request");
			goto fail;
		}
	}
	return arr;
fail:
	json_decref(arr);
	return NULL;
}

json_t *llm_openai_request(const struct llm_config *cfg, const struct llm_conv *conv,
			   const struct llm_tool *tools, size_t n_tools, struct cr_err *err)
{
	struct llm_norm_msg *v = NULL;
	size_t n = 0;
	if (llm_conv_normalize(conv, &v, &n, err) < 0)
		return NULL;
	/* Stable fields first, `messages` last: the body of the next request repeats this one up
	 * to the old tail, byte for byte. */
	json_t *root = json_pack("{s:s}", "model", cfg->model ? cfg->model : "");
	if (!root)
		goto oom;
	const char *tf = llm_openai_uses_max_completion(cfg) ? "max_completion_tokens"
							       : "max_tokens";
	if (json_object_set_new(root, tf, json_integer(cfg->max_output_tokens)) < 0)
		goto oom;
	if (cfg->temperature >= 0 &&
	    json_object_set_new(root, "temperature", json_real(cfg->temperature)) < 0)
		goto oom;
	if (json_object_set_new(root, "stream", json_false()) < 0)
		goto oom;
	if (cfg->prompt_cache_key && *cfg->prompt_cache_key &&
	    json_object_set_new(root, "prompt_cache_key", json_string(cfg->prompt_cache_key)) < 0)
		goto oom;
	if (n_tools) {
		json_t *t = tools_json(tools, n_tools, err);
		if (!t)
			goto fail;
		if (json_object_set_new(root, "tools", t) < 0)
			goto oom;
	}
	json_t *msgs = json_array();
	if (!msgs || json_object_set_new(root, "messages", msgs) < 0)
		goto oom;
	for (size_t i = 0; i < n; i++) {
		json_t *m = message_json(cfg, &v[i]);
		if (!m || json_array_append_new(msgs, m) < 0)
			goto oom;
	}
	free(v);
	return root;
oom:
	cr_fail(err, ENOMEM, "building the request");
fail:
	free(v);
	json_decref(root);
	return NULL;
}

/* ---- reply --------------------------------------------------------------------------------- */

static enum llm_finish map_finish(const char *f)
{
	if (!f)
		return LLM_FINISH_OTHER;
	if (!strcmp(f, "stop"))
		return LLM_FINISH_END;
	if (!strcmp(f, "tool_calls") || !strcmp(f, "function_call"))
		return LLM_FINISH_TOOL_USE;
	if (!strcmp(f, "length"))
		return LLM_FINISH_LENGTH;
	if (!strcmp(f, "content_filter"))
		return LLM_FINISH_REFUSAL;
	return LLM_FINISH_OTHER;
}

/* content: a string, null, or (some servers) an array of {"type":"text","text":...} parts. */
static int take_content(const json_t *content, struct cr_buf *text, struct cr_err *err)
{
	if (!content || json_is_null(content))
		return 0;
	if (json_is_string(content))
		return llm_p_append(text, json_string_value(content), err);
	if (!json_is_array(content))
		return llm_p_malformed(err, "choices[0].message.content is %s", llm_p_type(content));
	size_t i;
	json_t *part;
	json_array_foreach(content, i, part) {
		json_t *t = json_object_get(part, "text");
		if (json_is_string(t) && llm_p_append(text, json_string_value(t), err) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int take_call(const json_t *tc, size_t i, unsigned long *id_seq, struct llm_reply *r,
		     struct cr_err *err)
{
	if (!json_is_object(tc))
		return llm_p_malformed(err, "choices[0].message.tool_calls[%zu] is %s", i, llm_p_type(tc));
	json_t *fn = json_object_get(tc, "function");
	if (!json_is_object(fn))
		return llm_p_malformed(err, "choices[0].message.tool_calls[%zu].function missing", i);
	json_t *name = json_object_get(fn, "name");
	if (!json_is_string(name) || !*json_string_value(name))
		return llm_p_malformed(err, "choices[0].message.tool_calls[%zu].function.name missing",
				    i);
	json_t *args = json_object_get(fn, "arguments");
	json_t *id = json_object_get(tc, "id");
	return llm_p_add_call(r, json_is_string(id) ? json_string_value(id) : NULL,
			   json_string_value(name), args, id_seq, err);
}

int llm_openai_parse(const json_t *root, unsigned long *id_seq, struct llm_reply *r,
		     struct cr_err *err)
{
	if (!json_is_object(root))
		return llm_p_malformed(err, "top level is %s, not an object", llm_p_type(root));
	json_t *choices = json_object_get(root, "choices");
	if (!choices && json_object_get(root, "error"))
		return llm_p_error_in_reply(root, err);
	if (!json_is_array(choices) || json_array_size(choices) == 0)
		return llm_p_malformed(err, "choices missing or empty");
	json_t *ch = json_array_get(choices, 0);
	json_t *msg = json_object_get(ch, "message");
	if (!json_is_object(msg))
		return llm_p_malformed(err, "choices[0].message missing");

	json_t *model = json_object_get(root, "model");
	if (json_is_string(model))
		llm_copy_clip(r->model, sizeof r->model, json_string_value(model));

	struct cr_buf text;
	cr_buf_init(&text, (size_t)-1 / 2);
	int rc = take_content(json_object_get(msg, "content"), &text, err);
	if (rc < 0) {
		cr_buf_free(&text);
		return rc;
	}
	if (!(r->text = llm_p_buf_take(&text)))
		return cr_fail(err, ENOMEM, "reply");

	json_t *refusal = json_object_get(msg, "refusal");
	if (json_is_string(refusal) && *json_string_value(refusal) &&
	    !(r->refusal = llm_utf8_sanitize(json_string_value(refusal),
					     json_string_length(refusal))))
		return cr_fail(err, ENOMEM, "reply");

	json_t *calls = json_object_get(msg, "tool_calls");
	if (calls && !json_is_null(calls)) {
		if (!json_is_array(calls))
			return llm_p_malformed(err, "choices[0].message.tool_calls is %s",
					    llm_p_type(calls));
		size_t i;
		json_t *tc;
		json_array_foreach(calls, i, tc) {
			if ((rc = take_call(tc, i, id_seq, r, err)) < 0)
				return rc;
		}
	}

	json_t *fr = json_object_get(ch, "finish_reason");
	const char *f = json_is_string(fr) ? json_string_value(fr) : NULL;
	llm_copy_clip(r->finish_raw, sizeof r->finish_raw, f);
	r->finish = map_finish(f);
	if (r->refusal)
		r->finish = LLM_FINISH_REFUSAL;
	else if (r->n_calls && (r->finish == LLM_FINISH_END || r->finish == LLM_FINISH_OTHER))
		r->finish = LLM_FINISH_TOOL_USE; /* some local servers say "stop" beside calls */

	json_t *u = json_object_get(root, "usage");
	if (json_is_object(u)) {
		json_t *pd = json_object_get(u, "prompt_tokens_details");
		json_t *cd = json_object_get(u, "completion_tokens_details");
		r->usage.known = true;
		r->usage.input = llm_p_u64(u, "prompt_tokens"); /* includes cached_tokens */
		r->usage.output = llm_p_u64(u, "completion_tokens");
		r->usage.cache_read = llm_p_u64(pd, "cached_tokens");
		r->usage.cache_write = llm_p_u64(pd, "cache_write_tokens");
		r->usage.reasoning = llm_p_u64(cd, "reasoning_tokens");
	}
	return 0;
}
