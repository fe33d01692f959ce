/* server/srv_internal.h -- what the server's files share: routes, requests, replies, the
 * engine connection of the current thread, and the sandbox operations every route family needs.
 *
 * A route family is one file that exports a table (NULL-terminated by a zero entry):
 *
 *   static enum MHD_Result get_thing(struct srv_req *r) {
 *       const char *id = srv_param(r, "id");                 // still percent-encoded
 *       return srv_reply_json(r, 200, json_pack("{s:s}", "id", id));
 *   }
 *   const struct srv_route srv_routes_v1[] = {
 *       {"GET", "/v1/things/{id}", SRV_AUTH_BEARER, SRV_BODY_NONE, .handle = get_thing},
 *       {0},
 *   };
 *
 * and is listed once in http.c's table of tables.  Patterns are matched segment by segment:
 * "{name}" takes one non-empty segment, a final "{name*}" takes the rest of the path.  http.c
 * does authentication (before any body byte is read), body caps (413 with a JSON error),
 * logging (one JSON line per request; never bodies) and metrics; a handler only maps.
 *
 * Threading: libmicrohttpd runs one thread per connection; a handler may block (on the
 * engine).  A srv_req belongs to its connection's thread.
 */
#ifndef CORRAL_SERVER_SRV_INTERNAL_H
#define CORRAL_SERVER_SRV_INTERNAL_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "engine/engine.h"
#include "server/api_json.h"
#include "server/server.h"

enum srv_auth {
	SRV_AUTH_NONE = 0,
	SRV_AUTH_BEARER,  /* Authorization: Bearer <key> (native API) */
	SRV_AUTH_API_KEY, /* X-API-KEY: <key>, e2b_<hex> keys only (E2B control plane) */
	/* The E2B data plane (envd, interpreter): the sandbox named by E2b-Sandbox-Id (or the
	 * Host "<port>-<id>.<domain>") and its token in X-Access-Token or
	 * E2B-Traffic-Access-Token; r->sb is filled.  An unknown sandbox is 502, as E2B's own
	 * proxy answers for one that ended (the SDKs read it as "not running"). */
	SRV_AUTH_SANDBOX,
};
/* How a route family's errors look. */
enum srv_dialect {
	SRV_NATIVE = 0, /* {"error": {"code": "not_found", "message": ...}} */
	SRV_E2B,        /* {"code": 404, "message": ...} (E2B's REST APIs) */
	SRV_CONNECT,    /* {"code": "not_found", "message": ...} (Connect RPC, unary) */
};
enum srv_body {
	SRV_BODY_NONE = 0, /* a body is read and ignored (capped) */
	SRV_BODY_JSON,     /* collected into r->body, capped at max_json_bytes */
	SRV_BODY_RAW,      /* streamed to route->upload, chunk by chunk */
};

/* -- sandbox ids (ids.c) ------------------------------------------------------------- */

#define SRV_ID_LEN 19 /* "sb_" + 16 hex */

#define SRV_TOKEN_LEN 32 /* hex digits of a sandbox's access token */
#define SRV_TAG_MAX 64

struct srv_sandbox {
	char id[SRV_ID_LEN + 1];
	uint64_t session;       /* the engine's session id */
	int owner;              /* key index */
	uint32_t mode;
	uint64_t created_unix_ms;
	uint64_t added_mono_ms; /* for pruning against an engine snapshot */
	json_t *metadata;       /* object of strings; a caller's copy holds its own reference */
	char template_id[48];   /* E2B's name for the image ("base" for native sandboxes) */
	/* The E2B data plane's credential for this one sandbox (envd and the interpreter are
	 * reached without the API key): random, compared in constant time. */
	char token[SRV_TOKEN_LEN + 1];
};

struct srv_req;
typedef enum MHD_Result (*srv_handler)(struct srv_req *r);

struct srv_route {
	const char *method;
	const char *pattern;
	enum srv_auth auth;
	enum srv_body body;
	/* optional: after auth, before any body byte; may reply (then nothing else is called) */
	srv_handler begin;
	/* SRV_BODY_RAW: each chunk of the body (never called once begin replied) */
	void (*upload)(struct srv_req *r, const char *data, size_t len);
	/* the whole request is in: reply */
	srv_handler handle;
	enum srv_dialect dialect;
	/* SRV_CONNECT, server streaming: errors go as 200 + an end-of-stream envelope */
	bool stream;
};

extern const struct srv_route srv_routes_v1[];
extern const struct srv_route srv_routes_e2b[];    /* api_e2b.c: the control plane */
extern const struct srv_route srv_routes_envd[];   /* api_envd.c: processes, filesystem */
extern const struct srv_route srv_routes_files[];  /* api_files.c: envd's REST /files */
extern const struct srv_route srv_routes_interp[]; /* api_interp.c: the code interpreter */

#define SRV_MAX_PARAMS 4
#define SRV_REQUEST_ID_MAX 64 /* a client's X-Request-Id: 1-64 of [A-Za-z0-9._:-] */
#define SRV_MAX_ROUTES 128

struct srv_req {
	struct MHD_Connection *conn;
	const struct srv_route *route;
	unsigned route_idx;        /* global index, for metrics; SRV_MAX_ROUTES = none */
	const char *method;
	char request_id[SRV_REQUEST_ID_MAX + 1]; /* the client's X-Request-Id, or ours */
	char *path;                /* owned copy of the (still encoded) path; params point in it */
	const char *pnames[SRV_MAX_PARAMS];
	const char *pvals[SRV_MAX_PARAMS];
	size_t n_params;
	int key;                   /* index of the caller's key, -1 before auth */
	int client_fd;             /* the HTTP socket: hang-up detection while a cell runs */
	struct cr_buf body;        /* SRV_BODY_JSON */
	bool body_too_large;
	uint64_t body_len;         /* bytes received */
	bool responded;
	unsigned status;
	const char *error_code;    /* static string, for the log */
	uint64_t t0_us;
	_Atomic uint64_t bytes_out;
	char sandbox[32];          /* the sandbox id named by the request, for the log */
	struct srv_sandbox sb;     /* SRV_AUTH_SANDBOX: the sandbox (metadata referenced) */
	bool have_sb;
	char allow[64];            /* 405: the methods the path takes */
	void *state;               /* a route's own state, freed by state_free at the end */
	void (*state_free)(void *state);
	_Atomic int refs;          /* MHD's con_cls + a streamed response */
};

/* -- the daemon (daemon.c) and the access handler (http.c) ------------------------------- */

/* 0: the connection is handling a request; else the time its next request head is due. */
void srv_conn_deadline(struct MHD_Connection *conn, uint64_t deadline_us);
void srv_http_init(void);
enum MHD_Result srv_on_request(void *cls, struct MHD_Connection *conn, const char *url,
			       const char *method, const char *version, const char *upload_data,
			       size_t *upload_size, void **con_cls);
void srv_on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
		      enum MHD_RequestTerminationCode why);

/* -- requests and replies (http.c) ------------------------------------------------------ */

const struct srv_config *srv_cfg(void);
const char *srv_param(const struct srv_req *r, const char *name);
const char *srv_header(const struct srv_req *r, const char *name);
const char *srv_query(const struct srv_req *r, const char *name); /* still percent-encoded */
/* A query parameter percent-decoded into out: 0, -ENOENT (absent), or srv_decode's errors. */
int srv_query_decoded(const struct srv_req *r, const char *name, char *out, size_t n);
/* Percent-decodes a parameter into out (NUL-terminated).  -EINVAL for an embedded NUL byte,
 * -ENAMETOOLONG when it does not fit. */
int srv_decode(const char *in, char *out, size_t n);

/* Every reply function returns what the access handler should return.  The JSON body is
 * stolen (NULL: 500).  Errors: {"error": {"code": ..., "message": ...}}. */
enum MHD_Result srv_reply_json(struct srv_req *r, unsigned status, json_t *body);
/* The same with one extra response header (header NULL: none). */
enum MHD_Result srv_reply_json_header(struct srv_req *r, unsigned status, json_t *body,
				      const char *header, const char *value);
enum MHD_Result srv_reply_error(struct srv_req *r, unsigned status, const char *code,
				const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Maps -errno (engine or local) to a status and code with the one table (api_json.c). */
enum MHD_Result srv_reply_errno(struct srv_req *r, int neg_errno, const struct cr_err *err);
enum MHD_Result srv_reply_empty(struct srv_req *r, unsigned status);
enum MHD_Result srv_reply_data(struct srv_req *r, unsigned status, const char *content_type,
			       const char *data, size_t len);
/* A body produced by reader (MHD_SIZE_UNKNOWN: chunked).  cls is released by release when the
 * response is done with, whatever happened to the connection. */
enum MHD_Result srv_reply_stream(struct srv_req *r, unsigned status, const char *content_type,
				 uint64_t size, MHD_ContentReaderCallback reader, void *cls,
				 MHD_ContentReaderFreeCallback release);
/* Adds to the bytes logged for r (streamed replies count what they produce). */
void srv_req_count_out(struct srv_req *r, size_t n);
void srv_req_ref(struct srv_req *r);
void srv_req_unref(struct srv_req *r);

/* -- envd (api_envd.c), shared with api_files.c ------------------------------------------ */

/* An engine failure as envd answers it (an ended sandbox is 502, busy 412, ...). */
enum MHD_Result srv_envd_failed(struct srv_req *r, int rc, const struct cr_err *err);
/* The user a request asks to act as must be the sandbox's one user; replies itself if not. */
bool srv_envd_user_ok(struct srv_req *r, enum MHD_Result *ret);

/* -- keys (keys.c) ----------------------------------------------------------------------- */

/* Index of the key equal to presented (constant time per key, every key compared), or -1.
 * e2b_only: only keys of the form e2b_<hex> count (the X-API-KEY surface). */
int srv_keys_match(const struct srv_keys *k, const char *presented, size_t len, bool e2b_only);

/* -- metrics (metrics.c) ---------------------------------------------------------------- */

enum srv_refusal { SRV_REFUSED_AUTH, SRV_REFUSED_CAPACITY, SRV_REFUSED_TOO_LARGE,
		   SRV_REFUSED_BAD_REQUEST, SRV_REFUSED_N };
void srv_metrics_request(unsigned route_idx, unsigned status, uint64_t duration_us);
void srv_metrics_refused(enum srv_refusal why);
void srv_metrics_stream(int delta); /* streaming executions in flight */
/* Renders the Prometheus text exposition (engine stats may be NULL when unreachable). */
int srv_metrics_render(struct cr_buf *out, const struct eng_stats *st);
/* Route names for the metrics labels (set by http.c at start). */
void srv_metrics_set_routes(const struct srv_route *const *routes, unsigned n);

/* -- sandbox ids (ids.c): the records (struct srv_sandbox above) ----------------------- */

int srv_ids_init(size_t capacity, struct cr_err *err);
void srv_ids_free(void);
/* Records a new sandbox; fills out->id with a fresh unguessable id.  Takes a metadata ref. */
int srv_ids_add(int owner, uint64_t session, uint32_t mode, json_t *metadata,
		const char *template_id, struct srv_sandbox *out, struct cr_err *err);
/* Looks up an id by its access token instead of an owner: 0, -ENOENT (no such sandbox) or
 * -EACCES (the token does not match). */
int srv_ids_get_by_token(const char *id, const char *token, struct srv_sandbox *out);
/* The E2B interpreter's code contexts of a sandbox ("default" is implicit): -ENOENT for an
 * unknown sandbox or context, -EEXIST, -ENOSPC past E2B_CONTEXTS_MAX. */
int srv_ids_ctx_add(const char *id, const char *ctx);
int srv_ids_ctx_remove(const char *id, const char *ctx);
bool srv_ids_ctx_has(const char *id, const char *ctx);
/* A new array of the context names (strings); NULL for an unknown sandbox. */
json_t *srv_ids_ctx_list(const char *id);
/* The command an E2B client is running in the sandbox (one at a time: the session runs one
 * thing at a time); config (stolen) is its description for process.Process/List.  pid 0
 * clears it.  get: 0 with *config referenced, or -ENOENT when none runs. */
int srv_ids_set_process(const char *id, uint32_t pid, const char *tag, json_t *config);
int srv_ids_get_process(const char *id, uint32_t *pid, char *tag, size_t tag_n,
			json_t **config);
/* Looks up an id the owner may see: 0 (out filled, metadata referenced) or -ENOENT. */
int srv_ids_get(const char *id, int owner, struct srv_sandbox *out);
int srv_ids_remove(const char *id, int owner);
/* The owner's sandboxes (each with a metadata reference); caller frees with srv_ids_release. */
int srv_ids_list(int owner, struct srv_sandbox **out, size_t *n);
void srv_ids_release(struct srv_sandbox *v, size_t n);
/* Drops records whose session the engine no longer has (sessions: a snapshot taken at
 * snapshot_mono_ms; records added after it are kept). */
size_t srv_ids_prune(const uint64_t *sessions, size_t n, uint64_t snapshot_mono_ms);
size_t srv_ids_count(void);

/* -- engine operations (ops.c) ---------------------------------------------------------- */

uint64_t srv_now_us(void);  /* monotonic */
uint64_t srv_unix_ms(void); /* wall clock */

/* This thread's engine connection (connects on first use).  Give it back with reusable=false
 * whenever an operation was left half-way (the manager then cancels it). */
struct eng_client *srv_engine_take(struct cr_err *err);
void srv_engine_give(struct eng_client *c, bool reusable);

/* A cell in progress: engine frames pulled one at a time, with the HTTP client watched. */
struct srv_exec {
	struct eng_client *cl;
	int efd, cfd;
	struct eng_frame_hdr hdr;
	struct cr_buf frame;     /* payload of the current frame */
	bool done;               /* FINAL seen */
	struct eng_final fin;
	char *in;                /* what one read() brought: often several small frames */
	size_t in_len, in_off;
};
/* True when a whole next frame is already buffered (reading it will not block). */
bool srv_exec_ready(const struct srv_exec *x);
/* Sends the cell and waits for the engine to accept it (ENG_EXEC_ACK: it answers at once,
 * however long the cell stays silent), so that a refusal (busy, gone, ...) becomes an HTTP
 * status before any byte of the reply is sent. */
int srv_exec_start(struct srv_exec *x, uint64_t session, const struct srv_exec_req *q,
		   int client_fd, struct cr_err *err);
/* 1: an event in x->hdr / x->frame; 0: the final (x->fin); -ECONNRESET: the HTTP client hung
 * up (the cell is interrupted by srv_exec_end); other -errno: engine failure. */
int srv_exec_next(struct srv_exec *x, struct cr_err *err);
void srv_exec_end(struct srv_exec *x);

/* A streamed reply made of a cell's events (cellstream.c).  event() appends what one engine
 * event becomes; finish() what ends the reply: the final (f), or an engine failure (f NULL,
 * error says what); release() frees ctx when the reply is done with, whatever happened. */
struct srv_cell_conv {
	int (*event)(void *ctx, uint32_t type, const char *data, size_t len, struct cr_buf *out);
	int (*finish)(void *ctx, const struct eng_final *f, const char *error, struct cr_buf *out);
	void (*release)(void *ctx);
};
struct srv_cell_stream;
/* Starts the cell (an engine error becomes -errno before any reply byte); on success the
 * caller answers with srv_cell_reply, which takes s.  On failure ctx stays the caller's. */
int srv_cell_start(struct srv_req *r, uint64_t session, const struct srv_exec_req *q,
		   const struct srv_cell_conv *conv, void *ctx, struct srv_cell_stream **s,
		   struct cr_err *err);
enum MHD_Result srv_cell_reply(struct srv_req *r, struct srv_cell_stream *s,
			       const char *content_type);

struct srv_upload {
	struct eng_client *cl;
	uint64_t left;
	struct cr_buf chunk;
	int error;               /* first -errno seen (the rest of the body is swallowed) */
	bool stream;             /* size ENG_SIZE_STREAM: capped at max_upload_bytes instead */
	struct cr_err err;
};
/* size ENG_SIZE_STREAM: the length is not known in advance (chunked, multipart). */
int srv_upload_begin(struct srv_upload *u, uint64_t session, const char *path, uint64_t size,
		     struct cr_err *err);
void srv_upload_data(struct srv_upload *u, const char *data, size_t len);
/* Flushes and reads the engine's verdict: 0 or -errno (u->err). Releases the connection. */
int srv_upload_end(struct srv_upload *u);
void srv_upload_abort(struct srv_upload *u);

struct srv_download {
	struct eng_client *cl;
	uint64_t size, left;
	struct cr_buf frame;
	size_t off;
	int cfd;
};
/* Opens the file; 0 with d->size set, or -errno (nothing to release then). */
int srv_download_begin(struct srv_download *d, uint64_t session, const char *path,
		       int client_fd, struct cr_err *err);
/* Copies up to max bytes; 0 at the end; -errno on failure. */
ssize_t srv_download_read(struct srv_download *d, char *buf, size_t max);
void srv_download_end(struct srv_download *d);

#endif
