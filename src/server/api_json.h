/* server/api_json.h -- request JSON -> engine structs, engine events -> response JSON.
 *
 * Pure functions (no HTTP, no engine connection, no globals but constant tables), so the unit
 * tests and the fuzzer (tests/fuzz/fuzz_api_json.c) reach every line.  Everything here reads
 * untrusted bytes: request bodies from the network and events from inside a sandbox.
 *
 *   struct srv_create_req q;
 *   if (srv_parse_create(body, len, &q, &err) < 0) -> 400 with err.msg
 *   ... q.mode, q.limits (0 = engine default), q.env (engine env block), q.metadata ...
 *   srv_create_req_free(&q);
 *
 *   struct srv_events ev = {0}; struct cr_buf line; cr_buf_init(&line, SRV_LINE_MAX);
 *   srv_event_line(&ev, ENG_EV_STDOUT, data, len, &line);  // appends {"type":"stdout",...}\n
 *
 * Unknown fields are refused (400 naming the field): a misspelt limit must not silently
 * become the default.  Caps are below (SRV_*), mirrored in docs/API.md.
 */
#ifndef CORRAL_SERVER_API_JSON_H
#define CORRAL_SERVER_API_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "engine/wire.h"

#define SRV_TIMEOUT_MAX_S (7u * 24 * 3600) /* a sandbox's lifetime, and an extension */
#define SRV_CELL_TIMEOUT_MAX_S 86400
#define SRV_ENV_MAX 64                     /* variables */
#define SRV_ENV_NAME_MAX 128
#define SRV_META_MAX 32                    /* metadata keys */
#define SRV_META_KEY_MAX 64
#define SRV_META_VALUE_MAX 512
#define SRV_AGG_STREAM_MAX (1u << 20)      /* aggregated stdout / stderr, each */
#define SRV_AGG_RESULTS_MAX (32u << 20)    /* aggregated display/result events, in total */
#define SRV_EVENT_MAX ENG_MAX_RUNNER_FRAME

struct srv_create_req {
	uint32_t mode;            /* enum eng_mode */
	uint32_t timeout_s;       /* lifetime; 0 = server default */
	struct eng_limits limits; /* 0 = default, field by field */
	char env[4096];           /* "K=V\0K=V\0\0", as struct eng_req_create wants it */
	json_t *metadata;         /* object of strings; never NULL after success */
};
int srv_parse_create(const char *body, size_t len, struct srv_create_req *out,
		     struct cr_err *err);
void srv_create_req_free(struct srv_create_req *q);

struct srv_exec_req {
	char *code;               /* NUL-terminated UTF-8, at most ENG_MAX_CODE bytes */
	size_t code_len;
	char context[ENG_NAME_MAX];
	uint32_t timeout_ms;      /* 0 = the sandbox's cell timeout */
	bool svg;
	bool command;             /* code is a command payload (eng_cmd_encode), not Python */
};
int srv_parse_execute(const char *body, size_t len, struct srv_exec_req *out,
		      struct cr_err *err);
void srv_exec_req_free(struct srv_exec_req *q);

/* {"timeout_s": N}: 1 <= N <= SRV_TIMEOUT_MAX_S. */
int srv_parse_timeout(const char *body, size_t len, uint32_t *timeout_s, struct cr_err *err);

/* Shared by the route families' parsers (api_json.c, e2b_json.c). */
json_t *srv_json_object(const char *body, size_t len, size_t max, struct cr_err *err);
/* Refuses keys outside allowed (NULL-terminated), naming the first unknown one. */
int srv_json_only_keys(const json_t *o, const char *const *allowed, const char *where,
		       struct cr_err *err);
/* An object of strings -> the engine's "K=V\0K=V\0\0" block (names checked, size capped);
 * name is the field, for the messages. */
int srv_json_env(const json_t *e, const char *name, char *block, size_t cap,
		 struct cr_err *err);
/* An object of short strings (SRV_META_*) -> a deep copy in *out. */
int srv_json_metadata(const json_t *m, json_t **out, struct cr_err *err);

/* A size given as a number of bytes or a string ("512M", "1.5G"). */
int srv_json_size(const json_t *v, const char *name, uint64_t *out, struct cr_err *err);

/* A decoded URL path ("home/user/a.csv") -> the session path ("/home/user/a.csv").  Refuses
 * empty, ".", "..", empty components and over-long paths; out has ENG_PATH_MAX bytes. */
int srv_session_path(const char *decoded, char *out, size_t n, struct cr_err *err);

/* -errno -> HTTP status and error code: the one table. */
unsigned srv_status_for_errno(int errnum, const char **code);

/* Engine events -> one NDJSON line each.  stdout/stderr chunks are cut on UTF-8 boundaries
 * (up to 3 bytes carried over to the next chunk of the same stream); text that is not UTF-8
 * goes as base64 with "encoding": "base64".  The session's JSON events are validated with
 * jansson and passed through byte for byte when they are one line; only the runner's event
 * types (display, result, error, context) pass: anything else is dropped (returns 1), so code
 * in a sandbox cannot forge a "final" or "keepalive" line. */
struct srv_events {
	char carry[2][4];
	size_t carry_n[2];
};
int srv_event_line(struct srv_events *ev, uint32_t type, const char *data, size_t len,
		   struct cr_buf *out);
/* Flushes carried bytes (as base64 chunks) before the final line. */
int srv_events_flush(struct srv_events *ev, struct cr_buf *out);
json_t *srv_final_json(const struct eng_final *f);

/* Accept: application/json -- one object {stdout, stderr, results, error, final}. */
struct srv_agg {
	struct srv_events ev;
	struct cr_buf out, err;
	json_t *results;
	json_t *error;
	size_t results_bytes;
	uint64_t results_dropped;
};
void srv_agg_init(struct srv_agg *a);
int srv_agg_add(struct srv_agg *a, uint32_t type, const char *data, size_t len);
json_t *srv_agg_finish(struct srv_agg *a, const struct eng_final *f);
void srv_agg_free(struct srv_agg *a);

/* RFC 3339 UTC with milliseconds ("2025-01-31T12:00:00.000Z"); out has 32 bytes. */
void srv_rfc3339(uint64_t unix_ms, char *out, size_t n);
const char *srv_mode_name(uint32_t mode);
const char *srv_state_name(uint32_t state);
/* The public view of one sandbox. */
json_t *srv_sandbox_json(const char *id, const struct eng_session_info *info,
			 const json_t *metadata);

#endif
