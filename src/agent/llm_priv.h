/* agent/llm_priv.h -- helpers shared by the two reply parsers (llm_reply.c).  Private to
 * src/agent/llm_*.c; not for the agent loop.
 *
 *   return llm_p_malformed(err, "choices[0].message missing");   // -EPROTO, fixed prefix
 *   llm_p_add_call(r, id_or_NULL, name, args_json, id_seq, err);   // string|object|null args
 */
#ifndef CORRAL_AGENT_LLM_PRIV_H
#define CORRAL_AGENT_LLM_PRIV_H

#include <jansson.h>
#include <stdint.h>

#include "agent/llm.h"
#include "core/buf.h"
#include "core/err.h"

/* "malformed reply: <fmt>" with -EPROTO. */
int llm_p_malformed(struct cr_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A 2xx body that carries an error object instead of a reply (OpenRouter, proxies): -EPROTO. */
int llm_p_error_in_reply(const json_t *root, struct cr_err *err);
const char *llm_p_type(const json_t *j); /* "an object", "a string", "null", "missing" ... */
/* Non-negative integer field of o (NULL o allowed); 0 when absent or mistyped. */
uint64_t llm_p_u64(const json_t *o, const char *key);
int llm_p_append(struct cr_buf *b, const char *s, struct cr_err *err); /* 0 | -ENOMEM */
char *llm_p_buf_take(struct cr_buf *b); /* NUL-terminated, "" when empty; NULL on OOM */
/* Appends one tool call to r.  args: JSON string (raw text), object, null/NULL ("") or other
 * (kept as text, reported as not an object).  id NULL: "call_corral_<n>" from *id_seq. */
int llm_p_add_call(struct llm_reply *r, const char *id, const char *name, const json_t *args,
		   unsigned long *id_seq, struct cr_err *err);

#endif
