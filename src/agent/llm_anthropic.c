/* agent/llm_anthropic.c -- Anthropic Messages: request body and reply parser.
 * Wire format: ../shared/docs/llm-wire-formats.md section 2. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/llm_priv.h"
#include "agent/llm_wire.h"
#include "core/buf.h"

static int set_cache(json_t *block)
{
	return json_object_set_new(block, "cache_control", json_pack("{s:s}", "type", "ephemeral"));
}

/* The content blocks of one normalised message, appended to `blocks`. */
static int add_blocks(json_t *blocks, const struct llm_norm_msg *m)
{
	json_t *b;
	if (m->role == LLM_ROLE_TOOL) {
		b = json_pack("{s:s,s:s}", "type", "tool_result", "tool_use_id", m->tool_call_id);
		if (b && m->text && *m->text)
			json_object_set_new(b, "content", json_string(m->text));
		if (b && m->is_error)
			json_object_set_new(b, "is_error", json_true());
		return b ? json_array_append_new(blocks, b) : -1;
	}
	if (m->text && *m->text) { /* text blocks must be non-empty */
		b = json_pack("{s:s,s:s}", "type", "text", "text", m->text);
		if (!b || json_array_append_new(blocks, b) < 0)
			return -1;
	}
	for (size_t i = 0; i < m->n_calls; i++) {
		const struct llm_tool_call *c = &m->calls[i];
		b = json_pack("{s:s,s:s,s:s,s:o}", "type", "tool_use", "id", c->id, "name", c->name,
			      "input", llm_args_for_replay(c->arguments));
		if (!b || json_array_append_new(blocks, b) < 0)
			return -1;
	}
	return 0;
}

/* messages: user/assistant turns; consecutive same-role turns merged into one. */
static json_t *messages_json(const struct llm_norm_msg *v, size_t n)
{
	json_t *msgs = json_array();
	json_t *blocks = NULL;
	const char *cur = NULL;
	for (size_t i = 0; msgs && i < n; i++) {
		if (v[i].role == LLM_ROLE_SYSTEM)
			continue;
		const char *role = v[i].role == LLM_ROLE_ASSISTANT ? "assistant" : "user";
		json_t *mine = json_array();
		if (!mine || add_blocks(mine, &v[i]) < 0) {
			json_decref(mine);
			goto oom;
		}
		if (json_array_size(mine) == 0) { /* nothing sendable (empty text) */
			json_decref(mine);
			continue;
		}
		if (!cur || strcmp(cur, role) != 0) {
			blocks = json_array();
			json_t *m = json_pack("{s:s,s:o}", "role", role, "content", blocks);
			if (!m || json_array_append_new(msgs, m) < 0) {
				json_decref(mine);
				goto oom;
			}
			cur = role;
		}
		if (json_array_extend(blocks, mine) < 0) {
			json_decref(mine);
			goto oom;
		}
		json_decref(mine);
	}
	return msgs;
oom:
	json_decref(msgs);
	return NULL;
}

json_t *llm_anthropic_request(const struct llm_config *cfg, const struct llm_conv *conv,
			      const struct llm_tool *tools, size_t n_tools, struct cr_err *err)
{
	struct llm_norm_msg *v = NULL;
	size_t n = 0;
	if (llm_conv_normalize(conv, &v, &n, err) < 0)
		return NULL;
	bool cache = !cfg->anthropic_no_cache;
	json_t *root = json_pack("{s:s,s:I}", "model", cfg->model ? cfg->model : "", "max_tokens",
				 (json_int_t)cfg->max_output_tokens);
	if (!root)
		goto oom;
	if (cfg->temperature >= 0 &&
	    json_object_set_new(root, "temperature", json_real(cfg->temperature)) < 0)
		goto oom;
	if (json_object_set_new(root, "stream", json_false()) < 0)
		goto oom;

	/* Stable prefix (tools -> system, in Anthropic's cache order), each with a breakpoint. */
	json_t *sys = json_array();
	if (!sys)
		goto oom;
	for (size_t i = 0; i < n; i++) {
		if (v[i].role != LLM_ROLE_SYSTEM || !v[i].text || !*v[i].text)
			continue;
		json_t *b = json_pack("{s:s,s:s}", "type", "text", "text", v[i].text);
		if (!b || json_array_append_new(sys, b) < 0) {
			json_decref(sys);
			goto oom;
		}
	}
	if (json_array_size(sys) == 0) {
		json_decref(sys);
	} else {
		if (cache && set_cache(json_array_get(sys, json_array_size(sys) - 1)) < 0) {
			json_decref(sys);
			goto oom;
		}
		if (json_object_set_new(root, "system", sys) < 0)
			goto oom;
	}

	if (n_tools) {
		json_t *arr = json_array();
		if (!arr || json_object_set_new(root, "tools", arr) < 0)
			goto oom;
		for (size_t i = 0; i < n_tools; i++) {
			json_t *schema = llm_tool_schema(&tools[i], err);
			if (!schema)
				goto fail;
			json_t *t = json_pack("{s:s}", "name", tools[i].name);
			if (t && tools[i].description)
				json_object_set_new(t, "description",
						    json_string(tools[i].description));
			if (!t || json_object_set_new(t, "input_schema", schema) < 0 ||
			    json_array_append_new(arr, t) < 0)
				goto oom;
		}
		if (cache && set_cache(json_array_get(arr, n_tools - 1)) < 0)
			goto oom;
	}

	/* The growing tail, with the moving breakpoint on its last block. */
	json_t *msgs = messages_json(v, n);
	if (!msgs || json_object_set_new(root, "messages", msgs) < 0)
		goto oom;
	size_t nm = json_array_size(msgs);
	if (cache && nm) {
		json_t *blocks = json_object_get(json_array_get(msgs, nm - 1), "content");
		if (set_cache(json_array_get(blocks, json_array_size(blocks) - 1)) < 0)
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

static enum llm_finish map_stop(const char *s)
{
	if (!s)
		return LLM_FINISH_OTHER;
	if (!strcmp(s, "end_turn") || !strcmp(s, "stop_sequence"))
		return LLM_FINISH_END;
	if (!strcmp(s, "tool_use"))
		return LLM_FINISH_TOOL_USE;
	if (!strcmp(s, "max_tokens") || !strcmp(s, "model_context_window_exceeded"))
		return LLM_FINISH_LENGTH;
	if (!strcmp(s, "refusal"))
		return LLM_FINISH_REFUSAL;
	return LLM_FINISH_OTHER; /* pause_turn and future values */
}

int llm_anthropic_parse(const json_t *root, unsigned long *id_seq, struct llm_reply *r,
			struct cr_err *err)
{
	if (!json_is_object(root))
		return llm_p_malformed(err, "top level is %s, not an object", llm_p_type(root));
	json_t *type = json_object_get(root, "type");
	if (json_is_string(type) && !strcmp(json_string_value(type), "error"))
		return llm_p_error_in_reply(root, err);
	json_t *content = json_object_get(root, "content");
	if (!json_is_array(content)) {
		if (!content && json_object_get(root, "error"))
			return llm_p_error_in_reply(root, err);
		return llm_p_malformed(err, "content is %s, not an array", llm_p_type(content));
	}
	json_t *model = json_object_get(root, "model");
	if (json_is_string(model))
		llm_copy_clip(r->model, sizeof r->model, json_string_value(model));

	struct cr_buf text;
	cr_buf_init(&text, (size_t)-1 / 2);
	size_t i;
	json_t *b;
	int rc = 0;
	json_array_foreach(content, i, b) {
		json_t *bt = json_object_get(b, "type");
		if (!json_is_string(bt)) {
			rc = llm_p_malformed(err, "content[%zu].type missing", i);
			break;
		}
		const char *t = json_string_value(bt);
		if (!strcmp(t, "text")) {
			json_t *tx = json_object_get(b, "text");
			if (!json_is_string(tx)) {
				rc = llm_p_malformed(err, "content[%zu].text missing", i);
				break;
			}
			if ((rc = llm_p_append(&text, json_string_value(tx), err)) < 0)
				break;
		} else if (!strcmp(t, "tool_use")) {
			json_t *name = json_object_get(b, "name");
			json_t *id = json_object_get(b, "id");
			if (!json_is_string(name) || !*json_string_value(name)) {
				rc = llm_p_malformed(err, "content[%zu].name missing", i);
				break;
			}
			rc = llm_p_add_call(r, json_is_string(id) ? json_string_value(id) : NULL,
					    json_string_value(name), json_object_get(b, "input"),
					    id_seq, err);
			if (rc < 0)
				break;
		} /* thinking, redacted_thinking, server tool blocks: not ours, skipped */
	}
	if (rc < 0) {
		cr_buf_free(&text);
		return rc;
	}
	if (!(r->text = llm_p_buf_take(&text)))
		return cr_fail(err, ENOMEM, "reply");

	json_t *sr = json_object_get(root, "stop_reason");
	const char *s = json_is_string(sr) ? json_string_value(sr) : NULL;
	llm_copy_clip(r->finish_raw, sizeof r->finish_raw, s);
	r->finish = map_stop(s);
	if (r->n_calls && (r->finish == LLM_FINISH_END || r->finish == LLM_FINISH_OTHER))
		r->finish = LLM_FINISH_TOOL_USE;

	json_t *u = json_object_get(root, "usage");
	if (json_is_object(u)) {
		/* input_tokens excludes cache reads and writes: total prompt = all three. */
		uint64_t in = llm_p_u64(u, "input_tokens");
		uint64_t cw = llm_p_u64(u, "cache_creation_input_tokens");
		uint64_t cr = llm_p_u64(u, "cache_read_input_tokens");
		r->usage.known = true;
		r->usage.input = in + cw + cr;
		r->usage.cache_read = cr;
		r->usage.cache_write = cw;
		r->usage.output = llm_p_u64(u, "output_tokens");
		uint64_t w1h = llm_p_u64(json_object_get(u, "cache_creation"),
					 "ephemeral_1h_input_tokens");
		r->usage.cache_write_1h = w1h < cw ? w1h : cw;
	}
	return 0;
}
