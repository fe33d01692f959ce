/* server/api_interp.c -- the E2B code interpreter's API (what @e2b/code-interpreter's runCode
 * and code contexts send to port 49999), over the sandbox's corral session.
 *
 * Reached without the API key: the sandbox's access token authenticates (SRV_AUTH_SANDBOX).
 * Cells stream as NDJSON (e2b_json.c maps the engine's events); contexts are the runner's own
 * contexts under ids the server hands out, and the server remembers which exist.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "server/e2b_json.h"
#include "server/srv_internal.h"

/* The engine no longer has the session: it ended; the SDKs read 502 as "not running". */
static enum MHD_Result failed(struct srv_req *r, int rc, const struct cr_err *err)
{
	if (rc == -ENOENT) {
		srv_ids_remove(r->sb.id, r->sb.owner);
		return srv_reply_error(r, 502, "sandbox_not_found", "the sandbox ended");
	}
	if (rc == -EBUSY)
		return srv_reply_error(r, 409, "busy", "the sandbox is running another cell or "
				       "command");
	return srv_reply_errno(r, rc, err);
}

/* -- execute ----------------------------------------------------------------------------- */

static int ev_event(void *ctx, uint32_t type, const char *data, size_t len, struct cr_buf *out)
{
	return e2b_exec_event(ctx, type, data, len, out);
}

static int ev_finish(void *ctx, const struct eng_final *f, const char *error, struct cr_buf *out)
{
	if (f)
		return e2b_exec_final(ctx, f, out);
	/* the engine failed under the cell: an error, and the end, so the SDK returns */
	json_t *e = json_pack("{s:s, s:s, s:s, s:s}", "type", "error", "name", "SandboxError",
			      "value", error ? error : "the engine failed", "traceback", "");
	char *s = e ? json_dumps(e, JSON_COMPACT) : NULL;
	json_decref(e);
	int r = s ? cr_buf_printf(out, "%s\n{\"type\":\"end_of_execution\"}\n", s) : -ENOMEM;
	free(s);
	return r;
}

static void ev_release(void *ctx)
{
	free(ctx);
}

static const struct srv_cell_conv EXEC_CONV = {ev_event, ev_finish, ev_release};

static enum MHD_Result execute(struct srv_req *r)
{
	struct cr_err err = {0};
	struct e2b_exec_req q;
	int rc = e2b_parse_execute(r->body.data, r->body.len, &q, &err);
	if (rc == -ENOENT)
		return srv_reply_error(r, 404, "not_found", "%s", err.msg);
	if (rc < 0)
		return srv_reply_errno(r, rc, &err);
	cr_buf_free(&r->body);
	if (q.context[0] && !srv_ids_ctx_has(r->sb.id, q.context)) {
		e2b_exec_req_free(&q);
		return srv_reply_error(r, 404, "not_found", "context %s not found", q.context);
	}
	struct srv_exec_req x;
	memset(&x, 0, sizeof x);
	x.code = q.code;
	x.code_len = q.code_len;
	snprintf(x.context, sizeof x.context, "%s", q.context[0] ? q.context : "default");
	struct e2b_events *ev = calloc(1, sizeof *ev);
	struct srv_cell_stream *s = NULL;
	rc = ev ? srv_cell_start(r, r->sb.session, &x, &EXEC_CONV, ev, &s, &err)
		: cr_fail(&err, ENOMEM, "events");
	e2b_exec_req_free(&q);
	if (rc < 0) {
		free(ev);
		return rc == -ECONNRESET ? MHD_NO : failed(r, rc, &err);
	}
	return srv_cell_reply(r, s, "application/x-ndjson");
}

/* -- contexts ---------------------------------------------------------------------------- */

static int engine_context(const struct srv_req *r, const char *name, bool create,
			  struct cr_err *err)
{
	struct eng_client *cl = srv_engine_take(err);
	int rc = cl ? eng_client_context(cl, r->sb.session, name, create, err) : -ECONNREFUSED;
	srv_engine_give(cl, rc == 0 || rc == -EINVAL || rc == -EBUSY);
	return rc;
}

static enum MHD_Result create_context(struct srv_req *r)
{
	struct cr_err err = {0};
	int rc = e2b_parse_context_create(r->body.data, r->body.len, &err);
	if (rc < 0)
		return srv_reply_errno(r, rc, &err);
	unsigned char rnd[8];
	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
		return srv_reply_error(r, 503, "unavailable", "no randomness");
	char id[32];
	snprintf(id, sizeof id, "ctx_%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2],
		 rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	rc = srv_ids_ctx_add(r->sb.id, id);
	if (rc == -ENOSPC)
		return srv_reply_error(r, 400, "invalid_argument", "a sandbox has at most %d "
				       "contexts", E2B_CONTEXTS_MAX);
	if (rc < 0)
		return srv_reply_errno(r, rc, NULL);
	if ((rc = engine_context(r, id, true, &err)) < 0) {
		srv_ids_ctx_remove(r->sb.id, id);
		return failed(r, rc, &err);
	}
	return srv_reply_json(r, 200, e2b_context_json(id));
}

static enum MHD_Result list_contexts(struct srv_req *r)
{
	json_t *names = srv_ids_ctx_list(r->sb.id);
	json_t *arr = json_array();
	if (!names || !arr) {
		json_decref(names);
		json_decref(arr);
		return srv_reply_error(r, 503, "unavailable", "out of memory");
	}
	json_array_append_new(arr, e2b_context_json("default"));
	size_t i;
	json_t *n;
	json_array_foreach(names, i, n)
		json_array_append_new(arr, e2b_context_json(json_string_value(n)));
	json_decref(names);
	return srv_reply_json(r, 200, arr);
}

static bool context_param(struct srv_req *r, char *out, size_t n, enum MHD_Result *ret)
{
	const char *raw = srv_param(r, "ctx");
	if (!raw || srv_decode(raw, out, n) < 0 || !srv_ids_ctx_has(r->sb.id, out)) {
		*ret = srv_reply_error(r, 404, "not_found", "context not found");
		return false;
	}
	if (!strcmp(out, "default")) {
		*ret = srv_reply_error(r, 400, "invalid_argument", "the default context cannot be "
				       "removed or restarted; create a context of your own");
		return false;
	}
	return true;
}

static enum MHD_Result delete_context(struct srv_req *r)
{
	char id[ENG_NAME_MAX];
	enum MHD_Result ret;
	if (!context_param(r, id, sizeof id, &ret))
		return ret;
	struct cr_err err = {0};
	int rc = engine_context(r, id, false, &err);
	if (rc < 0 && rc != -EINVAL)
		return failed(r, rc, &err);
	srv_ids_ctx_remove(r->sb.id, id);
	return srv_reply_empty(r, 204);
}

/* A fresh namespace under the same id: the context's variables and imports are gone. */
static enum MHD_Result restart_context(struct srv_req *r)
{
	char id[ENG_NAME_MAX];
	enum MHD_Result ret;
	if (!context_param(r, id, sizeof id, &ret))
		return ret;
	struct cr_err err = {0};
	int rc = engine_context(r, id, false, &err);
	if (rc == 0 || rc == -EINVAL)
		rc = engine_context(r, id, true, &err);
	if (rc < 0)
		return failed(r, rc, &err);
	return srv_reply_empty(r, 204);
}

#define SBX SRV_AUTH_SANDBOX

const struct srv_route srv_routes_interp[] = {
	{"POST", "/execute", SBX, SRV_BODY_JSON, .handle = execute, .dialect = SRV_E2B},
	{"POST", "/contexts", SBX, SRV_BODY_JSON, .handle = create_context, .dialect = SRV_E2B},
	{"GET", "/contexts", SBX, SRV_BODY_NONE, .handle = list_contexts, .dialect = SRV_E2B},
	{"DELETE", "/contexts/{ctx}", SBX, SRV_BODY_NONE, .handle = delete_context,
	 .dialect = SRV_E2B},
	{"POST", "/contexts/{ctx}/restart", SBX, SRV_BODY_NONE, .handle = restart_context,
	 .dialect = SRV_E2B},
	{0},
};
