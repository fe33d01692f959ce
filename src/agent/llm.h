/* agent/llm.h -- model providers: OpenAI-compatible Chat Completions and Anthropic Messages.
 *
 *   llm_global_init(&err);                             // once, in main, before any thread
 *   char key[512];
 *   llm_key_from_env_or_file(LLM_OPENAI, key_file, key, sizeof key, &err);  // never argv
 *   struct llm_config cfg;
 *   llm_config_init(&cfg, LLM_OPENAI, "gpt-5-mini");  // defaults table (llm_config_default)
 *   cfg.api_key = key;                                 // borrowed: must outlive the client
 *   cfg.base_url = "http://localhost:11434/v1";        // optional: Ollama, vLLM, llama.cpp
 *   struct llm_client *cl = llm_client_new(&cfg, &err);
 *
 *   struct llm_conv *conv = llm_conv_new();
 *   llm_conv_add_system(conv, system_prompt, &err);   // stable text first (prompt caching)
 *   llm_conv_add_user(conv, task, &err);
 *   for (;;) {
 *       struct llm_reply r;
 *       if (llm_complete(cl, conv, &llm_tool_run_python, 1, &r, &err) < 0) {
 *           trace(llm_reply_to_trace_json(&r));        // attempts, status, latency even here
 *           llm_reply_free(&r);  die(err.msg);         // one line, e.g. "openai: gave up ..."
 *       }
 *       trace(llm_reply_to_trace_json(&r));            // tokens in/out/cached, cost, latency
 *       llm_conv_add_reply(conv, &r, &err);            // the assistant turn, calls and all
 *       for (size_t i = 0; i < r.n_calls; i++) {
 *           const struct llm_reply_call *c = &r.calls[i];
 *           if (!c->arguments)                         // not valid JSON: tell the model why
 *               llm_conv_add_tool_result(conv, c->id, c->arguments_error, true, &err);
 *           else
 *               llm_conv_add_tool_result(conv, c->id, run(c->arguments), false, &err);
 *       }
 *       if (r.n_calls == 0) {                          // fallback: ```python fences in text
 *           struct llm_code_blocks b;
 *           llm_extract_code(r.text, strlen(r.text), &b, &err);
 *           ... llm_conv_add_user(conv, observation, &err) ...
 *           llm_code_blocks_free(&b);
 *       }
 *       llm_reply_free(&r);
 *   }
 *   llm_conv_free(conv);  llm_client_free(cl);  llm_global_cleanup();
 *
 * Ownership: the conversation owns copies of everything appended to it.  llm_config borrows its
 * strings; llm_client_new copies all of them except api_key, which stays borrowed (it is never
 * copied, logged, or put in an error message).  A reply owns its strings and json_t values until
 * llm_reply_free; it is always initialised by llm_complete, success or not.
 *
 * Threads: thread-compatible.  One client per thread; a conv or reply is not shared without a
 * lock.  llm_global_init/cleanup wrap curl_global_init/cleanup: call them once from main.
 *
 * Caching: requests are serialised deterministically (insertion-ordered keys, no timestamps or
 * random ids) with `messages` last, so a request whose conv only grew at the tail repeats the
 * previous request byte for byte up to the old tail (OpenAI's automatic prefix cache).  Anthropic
 * gets cache_control breakpoints on the last tool, the last system block and the last message
 * block.  Put system text first and never change it mid-run.
 *
 * Errors: -errno and one line in err (the provider's own message quoted and truncated):
 *   EACCES 401, EPERM 403, ENOENT 404 (unknown model or endpoint), EINVAL 400/422 and bad
 *   config, E2BIG 413, EMSGSIZE reply over max_reply_bytes, EPROTO malformed reply, EDQUOT out
 *   of quota / spend limit, EAGAIN a transient failure (5xx, 429, timeout, refused
 *   connection) that outlasted the retries or asked for a Retry-After above the cap,
 *   EHOSTUNREACH / EIO other transport errors (not retried), ECANCELED *cfg.cancel was set.
 * A tool call whose arguments are not valid JSON is NOT an error: see llm_reply_call.
 *
 * Lower layers live in agent/llm_wire.h (request bodies, reply parsers, retry arithmetic) for
 * tests, fuzzers and dry runs.  Reference: docs/LLM.md.
 */
#ifndef CORRAL_AGENT_LLM_H
#define CORRAL_AGENT_LLM_H

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* ---- global ------------------------------------------------------------------------------ */

int llm_global_init(struct cr_err *err); /* curl_global_init; once, before threads */
void llm_global_cleanup(void);           /* curl_global_cleanup; at exit (quiets leak checkers) */

/* ---- configuration ----------------------------------------------------------------------- */

enum llm_provider { LLM_OPENAI = 1, LLM_ANTHROPIC = 2 };
const char *llm_provider_name(enum llm_provider p); /* "openai" | "anthropic" | "?" */
/* "openai" (also "openai-compatible", "ollama", "vllm", "llamacpp") | "anthropic"; 0 | -EINVAL */
int llm_provider_parse(const char *s, enum llm_provider *out, struct cr_err *err);

/* Which field carries the output cap on OpenAI-compatible servers.  AUTO: max_completion_tokens
 * for api.openai.com, max_tokens for every other base URL (Ollama knows only that one). */
enum llm_token_field { LLM_TOKENS_AUTO = 0, LLM_TOKENS_MAX_COMPLETION, LLM_TOKENS_MAX };

/* USD per million tokens.  known=false: unknown (cost is reported unknown, never guessed). */
struct llm_price {
	bool known;
	double input;       /* uncached prompt tokens */
	double output;      /* completion tokens (reasoning included) */
	double cache_read;  /* cached prompt tokens */
	double cache_write; /* prompt tokens written to the cache (Anthropic 5 min TTL; 1 h = 2x in) */
};

struct llm_config {
	enum llm_provider provider;
	const char *model;      /* required */
	const char *base_url;   /* NULL: https://api.openai.com or https://api.anthropic.com.  A
				 * base ending in /v1 gets /chat/completions (or /messages)
				 * appended, any other base /v1/chat/completions.  http:// is
				 * allowed (local servers); redirects are never followed. */
	const char *api_key;    /* borrowed; NULL or "" = send none (local servers) */
	unsigned max_output_tokens;          /* default 4096 */
	enum llm_token_field token_field;    /* OpenAI-compatible only; default AUTO */
	double temperature;                  /* < 0: not sent (default; reasoning models reject it) */
	const char *prompt_cache_key;        /* OpenAI: optional prompt_cache_key; NULL = none */
	bool openai_empty_content;           /* send "" instead of null beside tool calls (LM Studio) */
	bool anthropic_no_cache;             /* no cache_control breakpoints */
	const char *anthropic_beta;          /* optional anthropic-beta header value */
	long connect_timeout_ms;             /* default 10000 */
	long total_timeout_ms;               /* per attempt, default 600000 */
	long idle_timeout_ms;                /* no byte received for this long; 0 = off (default:
					      * non-streaming replies arrive only at the end) */
	int max_retries;                     /* retries after the first attempt; default 4 */
	long backoff_base_ms;                /* delay = rand[0, min(cap, base * 2^retry)]; 500 */
	long backoff_cap_ms;                 /* default 8000 */
	long retry_after_cap_ms;             /* a longer Retry-After gives up; default 60000 */
	size_t max_reply_bytes;              /* response body cap (decoded); default 8 MiB */
	struct llm_price price;              /* .known=false: looked up by model (llm_price_lookup) */
	volatile sig_atomic_t *cancel;       /* optional: non-zero aborts transfers and waits */
};

/* Defaults, in one place (mirrored in docs/LLM.md). */
extern const struct llm_config llm_config_default;
/* cfg = llm_config_default with provider and model set (model is borrowed). */
void llm_config_init(struct llm_config *cfg, enum llm_provider p, const char *model);

/* The key for provider p: the environment (OPENAI_API_KEY / ANTHROPIC_API_KEY) first, else the
 * first line of key_file (trimmed; refused when the file is readable by group or others).  Keys
 * with control characters or spaces are refused.  -ENOKEY when neither gives a key. */
int llm_key_from_env_or_file(enum llm_provider p, const char *key_file, char *out, size_t outsz,
			     struct cr_err *err);
const char *llm_key_env_name(enum llm_provider p);

/* ---- tools --------------------------------------------------------------------------------- */

struct llm_tool {
	const char *name;        /* [A-Za-z0-9_-]{1,64} */
	const char *description;
	const char *parameters;  /* JSON Schema text of an object; NULL = no parameters */
};
/* run_python(code: string): the one tool of `corral analyze`. */
extern const struct llm_tool llm_tool_run_python;

/* ---- conversation -------------------------------------------------------------------------- */

enum llm_role { LLM_ROLE_SYSTEM, LLM_ROLE_USER, LLM_ROLE_ASSISTANT, LLM_ROLE_TOOL };

/* const so callers can pass literals and reply fields; a conv's copies are its own. */
struct llm_tool_call {
	const char *id;
	const char *name;
	const char *arguments; /* raw JSON text exactly as the model produced it */
};

struct llm_msg {
	enum llm_role role;
	char *text;                  /* system/user/assistant text (assistant: may be NULL); tool:
				      * the result text */
	struct llm_tool_call *calls; /* assistant only */
	size_t n_calls;
	char *tool_call_id;          /* tool only */
	bool is_error;               /* tool only */
};

struct llm_conv {
	struct llm_msg *msgs; /* read-only for callers; append with the functions below */
	size_t n, cap;
};

struct llm_conv *llm_conv_new(void); /* NULL on OOM */
void llm_conv_free(struct llm_conv *c);
/* Appending copies every string.  Invalid UTF-8 is replaced by U+FFFD (JSON needs UTF-8).
 * 0 | -ENOMEM | -EINVAL (NULL text/id). */
int llm_conv_add_system(struct llm_conv *c, const char *text, struct cr_err *err);
int llm_conv_add_user(struct llm_conv *c, const char *text, struct cr_err *err);
int llm_conv_add_assistant(struct llm_conv *c, const char *text,
			   const struct llm_tool_call *calls, size_t n_calls, struct cr_err *err);
int llm_conv_add_tool_result(struct llm_conv *c, const char *tool_call_id, const char *text,
			     bool is_error, struct cr_err *err);
struct llm_reply;
/* The assistant turn of a reply (text and every tool call with its raw arguments). */
int llm_conv_add_reply(struct llm_conv *c, const struct llm_reply *r, struct cr_err *err);
void llm_conv_truncate(struct llm_conv *c, size_t n); /* drop messages n.. (undo a turn) */

/* How requests are built from a conv (both providers):
 *  - every tool call gets exactly one result, right after its assistant turn: results are
 *    moved there in call order; a missing one becomes a synthetic error result ("no result was
 *    recorded"); a result whose id matches no open call is dropped.  Both APIs 400 otherwise.
 *  - arguments are echoed byte for byte when they are a JSON object; anything else (invalid
 *    JSON, "", non-object) is replayed as {} -- never replay a broken call verbatim.
 *  - OpenAI: system messages in place; assistant content null beside tool calls; `tool` role.
 *  - Anthropic: system messages become top-level `system` blocks; tool results are user
 *    `tool_result` blocks (is_error kept) placed first; consecutive same-role turns merged;
 *    empty text blocks omitted.  The request should end on a user turn (no prefill). */

/* ---- completion ---------------------------------------------------------------------------- */

enum llm_finish {
	LLM_FINISH_OTHER = 0, /* missing/unknown (raw string in finish_raw), Anthropic pause_turn */
	LLM_FINISH_END,       /* stop, end_turn, stop_sequence */
	LLM_FINISH_TOOL_USE,  /* tool_calls / tool_use (also: calls present with stop) */
	LLM_FINISH_LENGTH,    /* length, max_tokens, model_context_window_exceeded: maybe cut */
	LLM_FINISH_REFUSAL,   /* refusal, content_filter, or OpenAI message.refusal set */
};
const char *llm_finish_name(enum llm_finish f); /* "other" "end" "tool_use" "length" "refusal" */

/* Normalised across providers: input = every prompt token (cached or not); cache_read and
 * cache_write are parts of input; reasoning is part of output. */
struct llm_usage {
	bool known;              /* false: the server sent no usage */
	uint64_t input, output, cache_read, cache_write;
	uint64_t cache_write_1h; /* part of cache_write written with the 1 h TTL (Anthropic) */
	uint64_t reasoning;      /* OpenAI completion_tokens_details.reasoning_tokens */
};

struct llm_reply_call {
	char *id;            /* as sent by the server; synthesised ("call_corral_N") if missing */
	char *name;
	char *arguments_raw; /* exactly what the model produced ("" possible) */
	json_t *arguments;   /* parsed object ("" -> {}), or NULL when not a JSON object ... */
	char *arguments_error; /* ... and then a one-line reason to send back to the model */
};

struct llm_reply {
	enum llm_provider provider;
	char *text;          /* all text blocks joined ("" when none; NULL only after a failure) */
	char *refusal;       /* OpenAI message.refusal; NULL when none */
	struct llm_reply_call *calls;
	size_t n_calls;
	enum llm_finish finish;
	char finish_raw[32]; /* the provider's finish_reason / stop_reason, truncated */
	char model[128];     /* model reported by the server, else the configured one */
	struct llm_usage usage;
	bool cost_known;
	double cost_usd;
	/* Diagnostics: filled on failure too. */
	int http_status;     /* of the last attempt; 0 = no HTTP response */
	int attempts;        /* HTTP requests made (1 + retries) */
	long latency_ms;     /* last attempt, request sent to body received */
	long elapsed_ms;     /* whole llm_complete call, retries and waits included */
	char request_id[128];/* x-request-id (OpenAI) / request-id (Anthropic), "" if none */
};

struct llm_client;
struct llm_client *llm_client_new(const struct llm_config *cfg, struct cr_err *err);
void llm_client_free(struct llm_client *c);
/* The effective settings (defaults resolved, price looked up).  Borrowed from the client. */
const struct llm_config *llm_client_config(const struct llm_client *c);

/* One model call, retried per docs/LLM.md.  tools may be NULL with n_tools 0. */
int llm_complete(struct llm_client *c, const struct llm_conv *conv, const struct llm_tool *tools,
		 size_t n_tools, struct llm_reply *out, struct cr_err *err);
void llm_reply_free(struct llm_reply *r); /* frees members; r may be reused */

/* ---- cost and trace ------------------------------------------------------------------------ */

/* Price of a model from the built-in table (exact name, or name + a date suffix such as
 * -2025-08-07 / -20250929).  0 | -ENOENT (out->known = false). */
int llm_price_lookup(const char *model, struct llm_price *out);
/* usd for one call from cfg->price (or the table when unset).  *known = false when the
 * price or the usage is unknown. */
void llm_estimate_cost(const struct llm_config *cfg, const struct llm_usage *u, double *usd,
		       bool *known);
/* One object for the agent's JSON-lines trace:
 * {"provider","model","http_status","attempts","latency_ms","elapsed_ms","finish",
 *  "tool_calls","tokens":{"in","out","cached","cache_write"}|null,"cost_usd":x|null,
 *  "request_id"}.  New reference; NULL on OOM. */
json_t *llm_reply_to_trace_json(const struct llm_reply *r);

/* ---- fenced-code fallback ------------------------------------------------------------------ */

#define LLM_EXTRACT_MAX_BLOCKS 16
#define LLM_EXTRACT_MAX_BLOCK_BYTES (1u << 20)

struct llm_code_block {
	char *code;    /* NUL-terminated, LF line endings, fence indentation removed */
	size_t len;
	size_t line;   /* 1-based line of the opening fence */
	bool tagged;   /* ```python / ```py / ```python3 (else an untagged ```) */
};

struct llm_code_blocks {
	struct llm_code_block *v;
	size_t n;
	size_t dropped; /* blocks beyond LLM_EXTRACT_MAX_BLOCKS or LLM_EXTRACT_MAX_BLOCK_BYTES */
};

/* Python code blocks of a model's text: ``` or ~~~ fences of 3+ characters indented at most 3
 * spaces, closed by a fence of the same character at least as long; CRLF accepted.  Blocks
 * tagged python/py/python3 (any case) are returned; untagged blocks only when there is no
 * tagged one; other languages never.  An unterminated fence is not a block.  Returns the number
 * of blocks (out->n) or -ENOMEM; out is always initialised. */
int llm_extract_code(const char *text, size_t len, struct llm_code_blocks *out,
		     struct cr_err *err);
void llm_code_blocks_free(struct llm_code_blocks *b);

#endif
