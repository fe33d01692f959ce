/* fuzz_llm_reply.c -- the reply and error-body parsers of both providers over arbitrary bytes.
 * Input: first byte selects the provider (even: OpenAI, odd: Anthropic), the rest is the HTTP
 * body.  A parsed reply is then fed back through the conversation and both request builders
 * and the trace, which must all cope with whatever the parser let through. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/llm.h"
#include "agent/llm_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void roundtrip(const struct llm_reply *r)
{
	struct llm_conv *c = llm_conv_new();
	if (!c)
		return;
	llm_conv_add_user(c, "go", NULL);
	if (llm_conv_add_reply(c, r, NULL) == 0) {
		for (size_t i = 0; i < r->n_calls; i++)
			llm_conv_add_tool_result(c, r->calls[i].id,
						 r->calls[i].arguments_error ? r->calls[i].arguments_error
									     : "ok",
						 r->calls[i].arguments_error != NULL, NULL);
	}
	for (int p = LLM_OPENAI; p <= LLM_ANTHROPIC; p++) {
		struct llm_config cfg;
		llm_config_init(&cfg, (enum llm_provider)p, "m");
		char *body = llm_request_body(&cfg, c, &llm_tool_run_python, 1, NULL);
		free(body);
	}
	llm_conv_free(c);
	json_t *t = llm_reply_to_trace_json(r);
	if (!t)
		abort(); /* every string in a reply must be valid for JSON */
	json_decref(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	enum llm_provider p = (data[0] & 1) ? LLM_ANTHROPIC : LLM_OPENAI;
	const char *body = (const char *)data + 1;
	size_t len = size - 1;

	struct llm_reply r;
	llm_reply_init(&r, p);
	unsigned long seq = 0;
	if (llm_parse_reply(p, body, len, &seq, &r, NULL) == 0) {
		if (!r.text)
			abort();
		for (size_t i = 0; i < r.n_calls; i++) {
			const struct llm_reply_call *c = &r.calls[i];
			if (!c->id || !c->name || !c->arguments_raw ||
			    (!c->arguments == !c->arguments_error) ||
			    (c->arguments && !json_is_object(c->arguments)))
				abort();
		}
		roundtrip(&r);
	} else if (r.text || r.n_calls) {
		abort(); /* failure leaves nothing half-parsed */
	}
	llm_reply_free(&r);

	struct llm_api_error e;
	llm_parse_error_body(body, len, &e);
	if (memchr(e.message, '\0', sizeof e.message) == NULL)
		abort();
	return 0;
}
