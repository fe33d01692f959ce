/* agent/llm_wire.h -- the layer under agent/llm.h: request bodies, reply parsers, retry
 * arithmetic.  For the llm_*.c files, unit tests, fuzzers and dry runs; the agent loop needs
 * only llm.h.
 *
 *   char *body = llm_request_body(&cfg, conv, tools, n, &err);   // exactly what is POSTed
 *   struct llm_reply r;
 *   llm_reply_init(&r, LLM_OPENAI);
 *   if (llm_parse_reply(LLM_OPENAI, text, len, NULL, &r, &err) < 0) ... // -EPROTO: malformed
 *   llm_reply_free(&r);  free(body);
 *
 * Everything here is pure (no I/O, no clock, no global state) so it can be tested exactly.
 */
#ifndef CORRAL_AGENT_LLM_WIRE_H
#define CORRAL_AGENT_LLM_WIRE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "agent/llm.h"
#include "core/err.h"

/* jansson dump flags of every request body: compact, keys in insertion order (jansson >= 2.8
 * always keeps it), reals printed short. */
#define LLM_JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

/* Text of the synthetic result sent for a tool call the conv never answered. */
#define LLM_SYNTH_RESULT "error: no result was recorded for this tool call"

/* ---- requests ---------------------------------------------------------------------------- */

/* The conv as both builders see it: every assistant tool call followed by exactly one result
 * (see llm.h).  Pointers borrow from the conv; free the array with free(). */
struct llm_norm_msg {
	enum llm_role role;
	const char *text;
	const struct llm_tool_call *calls;
	size_t n_calls;
	const char *tool_call_id;
	bool is_error;
	bool synthetic;
};
int llm_conv_normalize(const struct llm_conv *c, struct llm_norm_msg **out, size_t *n_out,
		       struct cr_err *err);

/* The JSON Schema object of a tool (new reference); -EINVAL when parameters is not a JSON
 * object, or the name is not [A-Za-z0-9_-]{1,64}. */
json_t *llm_tool_schema(const struct llm_tool *t, struct cr_err *err);
/* Arguments for replay: the parsed object when raw is one, else {} (new reference). */
json_t *llm_args_for_replay(const char *raw);
/* Arguments from a reply: *obj = parsed object ("" -> {}), or NULL and *why = malloc'd
 * one-line reason.  0 | -ENOMEM. */
int llm_args_parse(const char *raw, json_t **obj, char **why);

json_t *llm_openai_request(const struct llm_config *cfg, const struct llm_conv *conv,
			   const struct llm_tool *tools, size_t n_tools, struct cr_err *err);
json_t *llm_anthropic_request(const struct llm_config *cfg, const struct llm_conv *conv,
			      const struct llm_tool *tools, size_t n_tools, struct cr_err *err);
/* Either of the two, dumped with LLM_JSON_FLAGS.  Caller frees.  cfg as after
 * llm_config_init (base_url only decides the token field). */
char *llm_request_body(const struct llm_config *cfg, const struct llm_conv *conv,
		       const struct llm_tool *tools, size_t n_tools, struct cr_err *err);
/* Whether the OpenAI-compatible request uses max_completion_tokens (else max_tokens). */
bool llm_openai_uses_max_completion(const struct llm_config *cfg);

/* ---- replies ----------------------------------------------------------------------------- */

void llm_reply_init(struct llm_reply *r, enum llm_provider p);
/* Parses a 2xx body into r (initialised by the caller).  id_seq numbers synthesised call ids
 * (may be NULL).  -EPROTO with "malformed reply: <what>" | -ENOMEM. */
int llm_parse_reply(enum llm_provider p, const char *body, size_t len, unsigned long *id_seq,
		    struct llm_reply *r, struct cr_err *err);
int llm_openai_parse(const json_t *root, unsigned long *id_seq, struct llm_reply *r,
		     struct cr_err *err);
int llm_anthropic_parse(const json_t *root, unsigned long *id_seq, struct llm_reply *r,
			struct cr_err *err);

/* The error object of a non-2xx body (any shape: OpenAI, Anthropic, OpenRouter, vLLM, plain
 * text).  Strings are raw untrusted bytes, truncated; quote before showing. */
struct llm_api_error {
	bool present;       /* some error text was found */
	char type[64];      /* error.type ("rate_limit_error", "server_error", ...) */
	char code[64];      /* error.code as text ("model_not_found", "insufficient_quota") */
	char message[320];  /* error.message, or the body's first line */
	bool no_retry;      /* insufficient_quota / enforced_spend_limit_reached */
};
void llm_parse_error_body(const char *body, size_t len, struct llm_api_error *out);

/* ---- retries ----------------------------------------------------------------------------- */

/* 408 409 429 500 502 503 504 529 (and any other 5xx). */
bool llm_status_retryable(int status);
/* Delay asked by the server in ms: retry-after-ms (number of ms) wins over retry-after (seconds
 * or an HTTP-date, relative to now).  -1 when absent or unparseable; a past date gives 0. */
long llm_parse_retry_after(const char *retry_after, const char *retry_after_ms, time_t now);
/* Full jitter: uniform in [0, min(cap_ms, base_ms * 2^retry)], retry counted from 0. */
long llm_backoff_delay_ms(int retry, long base_ms, long cap_ms, uint64_t *rng);
uint64_t llm_rng_next(uint64_t *state); /* xorshift64*; state must be non-zero */

/* ---- small shared helpers ---------------------------------------------------------------- */

/* Copy of s (len bytes) with invalid UTF-8 replaced by U+FFFD; NULL on OOM. */
char *llm_utf8_sanitize(const char *s, size_t len);
/* snprintf("%s") that never leaves a cut UTF-8 sequence at the end. */
void llm_copy_clip(char *dst, size_t dstsz, const char *src);
/* Writes "'<quoted, escaped, truncated>'"-style text of untrusted bytes (cr_log_quote). */
void llm_quote(char *out, size_t outsz, const char *s);

#endif
