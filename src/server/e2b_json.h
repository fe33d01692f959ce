/* server/e2b_json.h -- the wire formats of the E2B-compatible surface, as the official SDKs
 * speak them (docs/API.md, "E2B compatibility"): control-plane bodies, Connect RPC envelopes
 * and the proto3 JSON messages of envd's process and filesystem services, and the code
 * interpreter's NDJSON events.
 *
 * Pure functions, like api_json.h: no HTTP, no engine connection, no globals but constant
 * tables, so the unit tests and the fuzzer (tests/fuzz/fuzz_api_json.c) reach every line.
 * Everything parsed here is untrusted: request bodies from the network, events from inside a
 * sandbox.  Unknown request fields are ignored where the SDK sends fields corral has no use
 * for, and refused (400 naming the field) where honouring them silently would be a lie
 * (network access, pausing, volumes).
 *
 *   struct e2b_create_req q;
 *   if (e2b_parse_create(body, len, &q, &err) < 0) -> 400 {"code": 400, "message": err.msg}
 *   e2b_create_req_free(&q);
 *
 *   struct e2b_events ev = {0};                        // one per /execute reply
 *   e2b_exec_event(&ev, ENG_EV_STDOUT, data, len, &out); // appends {"type":"stdout",...}\n
 *   e2b_exec_final(&ev, &final, &out);                  // ... and end_of_execution
 */
#ifndef CORRAL_SERVER_E2B_JSON_H
#define CORRAL_SERVER_E2B_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "engine/engine.h"

/* What corral reports as its envd version.  The SDKs switch features on by it: 0.5.7 has
 * octet-stream uploads and no per-file metadata (0.6.2), which keeps the surface small. */
#define E2B_ENVD_VERSION "0.5.7"
#define E2B_CLIENT_ID "corral"
#define E2B_DEFAULT_TIMEOUT_S 300          /* E2B's own default lifetime */
#define E2B_TEMPLATE_DEFAULT "base"
#define E2B_HOME "/home/user"
#define E2B_MESSAGE_MAX (1u << 20)         /* one Connect request message */
#define E2B_CONTEXTS_MAX 64                /* the runner's own limit */

/* -- control plane ---------------------------------------------------------------------- */

struct e2b_create_req {
	char template_id[64];
	uint32_t timeout_s;   /* 0: E2B_DEFAULT_TIMEOUT_S */
	char env[4096];       /* the engine's "K=V\0...\0" block */
	json_t *metadata;     /* object of strings; never NULL after success */
};
/* POST /sandboxes and /v2/sandboxes.  Templates: "base", "code-interpreter-v1" and their
 * aliases name corral's one image; anything else is refused. */
int e2b_parse_create(const char *body, size_t len, struct e2b_create_req *out,
		     struct cr_err *err);
void e2b_create_req_free(struct e2b_create_req *q);
/* {"timeout": seconds}; an empty body or a missing field gives *present = false. */
int e2b_parse_timeout(const char *body, size_t len, bool *present, uint32_t *timeout_s,
		      struct cr_err *err);

struct e2b_sandbox_view {
	const char *id, *template_id, *token;
	const json_t *metadata;
	const struct eng_session_info *info;
	uint64_t created_unix_ms;
	unsigned host_cpus;   /* cpuCount when the sandbox has no cpu quota */
};
/* The create / connect answer: ids, versions and the sandbox's access token. */
json_t *e2b_sandbox_created(const struct e2b_sandbox_view *v);
/* GET /sandboxes/{id} and the items of GET /v2/sandboxes (no token). */
json_t *e2b_sandbox_detail(const struct e2b_sandbox_view *v);
/* One sample for GET /sandboxes/{id}/metrics, from the engine's counters. */
json_t *e2b_sandbox_metrics(const struct e2b_sandbox_view *v, uint64_t now_unix_ms);

/* The `metadata` query of a list: "k=v&k2=v2" with each part percent-encoded. */
int e2b_parse_metadata_filter(const char *query, json_t **out, struct cr_err *err);
bool e2b_metadata_matches(const json_t *filter, const json_t *metadata);

/* -- Connect RPC (envd) ------------------------------------------------------------------ */

/* The Connect error code for an HTTP status ("not_found" for 404, ...). */
const char *e2b_connect_code(unsigned http_status);
/* A streaming request's body is one envelope: flags (0), u32 big-endian length, message. */
int e2b_envelope_unwrap(const char *body, size_t len, const char **msg, size_t *msg_len,
			struct cr_err *err);
/* Appends one envelope holding msg (stolen). */
int e2b_envelope_put(struct cr_buf *out, json_t *msg);
/* The end-of-stream envelope: {} or {"error": {"code": code, "message": message}}. */
int e2b_end_stream(struct cr_buf *out, const char *code, const char *message);

/* process.Process/Start: {"process": {"cmd", "args", "envs", "cwd"}, "stdin", "tag", "pty"}
 * -> the engine's command payload (eng_cmd_encode) and, in *config, the process's
 * description for List ({cmd, args, envs, cwd}).  A pty is refused (not supported). */
int e2b_parse_process_start(const char *msg, size_t len, struct cr_buf *payload,
			    json_t **config, char *tag, size_t tag_n, struct cr_err *err);
/* {"process": {"pid": N} | {"tag": T}, ...}; signal (may be NULL) from "signal". */
int e2b_parse_process_selector(const char *msg, size_t len, uint32_t *pid, char *tag,
			       size_t tag_n, int *signal, struct cr_err *err);
int e2b_process_start_event(struct cr_buf *out, uint32_t pid);
int e2b_process_data_event(struct cr_buf *out, bool is_stderr, const char *data, size_t len);
int e2b_process_keepalive_event(struct cr_buf *out);
/* How the command ended (a final with status OK, or a kill by a limit). */
int e2b_process_end_event(struct cr_buf *out, const struct eng_final *f);

/* A path of a filesystem request -> the absolute session path (relative: under /home/user).
 * key names the field ("path", "source", ...). */
int e2b_parse_path(const char *msg, size_t len, const char *key, char *out, size_t n,
		   struct cr_err *err);
/* A session path from a query or a multipart file name, the same way. */
int e2b_session_path(const char *p, char *out, size_t n, struct cr_err *err);
/* ListDir's depth (default 1, at most 8). */
int e2b_parse_depth(const char *msg, size_t len, unsigned *depth, struct cr_err *err);
/* EntryInfo for an engine entry found in dir (an absolute session path). */
json_t *e2b_entry_json(const char *dir, const struct eng_dirent *e);

/* -- code interpreter ------------------------------------------------------------------- */

struct e2b_exec_req {
	char *code;           /* NUL-terminated UTF-8, at most ENG_MAX_CODE bytes */
	size_t code_len;
	char context[ENG_NAME_MAX]; /* "" = the default context */
};
int e2b_parse_execute(const char *body, size_t len, struct e2b_exec_req *out,
		      struct cr_err *err);
void e2b_exec_req_free(struct e2b_exec_req *q);
/* POST /contexts {language?, cwd?}: only Python, only the home directory. */
int e2b_parse_context_create(const char *body, size_t len, struct cr_err *err);
json_t *e2b_context_json(const char *id);

/* Engine events -> the interpreter's NDJSON lines.  stdout/stderr become text (invalid UTF-8
 * replaced by U+FFFD, a sequence cut between two chunks carried over); display and result
 * MIME bundles become `result` objects; errors pass; anything else is dropped. */
struct e2b_events {
	char carry[2][4];
	size_t carry_n[2];
	bool error_seen;
};
int e2b_exec_event(struct e2b_events *ev, uint32_t type, const char *data, size_t len,
		   struct cr_buf *out);
/* number_of_executions, an error for a cell that a limit ended without one, and
 * end_of_execution, which is always last. */
int e2b_exec_final(struct e2b_events *ev, const struct eng_final *f, struct cr_buf *out);

#endif
