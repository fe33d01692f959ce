/* server/api_e2b.c -- the E2B-compatible control plane (docs/API.md, "E2B compatibility").
 *
 * What the official SDKs' Sandbox.create / connect / kill / list / setTimeout / getInfo /
 * getMetrics send, authenticated by X-API-KEY with a key of the e2b_<hex> form.  These are the
 * native API's sandboxes: a key sees the ones it created through either surface, and nobody
 * else's.  What corral does not do (pause, snapshots, forks, network rules) answers 501 with a
 * message the SDK shows, never a hang.  Bodies and errors are E2B's ({"code": N, "message"}).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/e2b_json.h"
#include "server/srv_internal.h"

static bool lookup(struct srv_req *r, struct srv_sandbox *sb, enum MHD_Result *ret)
{
	char id[64];
	const char *raw = srv_param(r, "id");
	if (!raw || srv_decode(raw, id, sizeof id) < 0 || srv_ids_get(id, r->key, sb) < 0) {
		*ret = srv_reply_error(r, 404, "not_found", "sandbox %s not found", r->sandbox);
		return false;
	}
	return true;
}

static enum MHD_Result failed(struct srv_req *r, const struct srv_sandbox *sb, int rc,
			      const struct cr_err *err)
{
	if (rc == -ENOENT && sb) {
		srv_ids_remove(sb->id, r->key);
		return srv_reply_error(r, 404, "not_found", "sandbox %s not found (it ended)", sb->id);
	}
	return srv_reply_errno(r, rc, err);
}

static void view_of(const struct srv_sandbox *sb, const struct eng_session_info *info,
		    struct e2b_sandbox_view *v)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	*v = (struct e2b_sandbox_view){.id = sb->id, .template_id = sb->template_id,
				       .token = sb->token, .metadata = sb->metadata, .info = info,
				       .created_unix_ms = sb->created_unix_ms,
				       .host_cpus = cpus > 0 ? (unsigned)cpus : 1};
}

/* The engine's view of one sandbox; replies itself on failure. */
static bool info_of(struct srv_req *r, const struct srv_sandbox *sb, struct eng_session_info *info,
		    enum MHD_Result *ret)
{
	struct cr_err err = {0};
	struct eng_client *cl = srv_engine_take(&err);
	int rc = cl ? eng_client_info(cl, sb->session, info, &err) : -ECONNREFUSED;
	srv_engine_give(cl, rc == 0);
	if (rc < 0) {
		*ret = failed(r, sb, rc, &err);
		return false;
	}
	return true;
}

static enum MHD_Result create(struct srv_req *r)
{
	struct cr_err err = {0};
	struct e2b_create_req q;
	int rc = e2b_parse_create(r->body.data, r->body.len, &q, &err);
	if (rc < 0)
		return srv_reply_errno(r, rc, &err);
	struct eng_req_create req;
	memset(&req, 0, sizeof req);
	req.mode = ENG_STATEFUL;
	req.limits.lifetime_s = q.timeout_s ? q.timeout_s : E2B_DEFAULT_TIMEOUT_S;
	memcpy(req.env, q.env, sizeof req.env);
	struct eng_client *cl = srv_engine_take(&err);
	struct eng_rsp_created created;
	rc = cl ? eng_client_create(cl, &req, NULL, &created, &err) : -(err.code ? err.code : EIO);
	if (rc < 0) {
		srv_engine_give(cl, false);
		e2b_create_req_free(&q);
		if (rc == -EAGAIN)
			return srv_reply_error(r, 429, "capacity", "at capacity: no sandbox can be "
					       "created now; retry later");
		return srv_reply_errno(r, rc, &err);
	}
	struct srv_sandbox sb;
	rc = srv_ids_add(r->key, created.session, ENG_STATEFUL, q.metadata, q.template_id, &sb,
			 &err);
	e2b_create_req_free(&q);
	if (rc < 0) {
		struct cr_err e2;
		eng_client_destroy(cl, created.session, &e2);
		srv_engine_give(cl, true);
		return srv_reply_error(r, 429, "capacity", "too many sandboxes; retry later");
	}
	srv_engine_give(cl, true);
	snprintf(r->sandbox, sizeof r->sandbox, "%s", sb.id);
	struct e2b_sandbox_view v;
	view_of(&sb, NULL, &v);
	enum MHD_Result ret = srv_reply_json(r, 201, e2b_sandbox_created(&v));
	json_decref(sb.metadata);
	return ret;
}

static int by_creation(const void *a, const void *b)
{
	const struct srv_sandbox *x = a, *y = b;
	if (x->created_unix_ms != y->created_unix_ms)
		return x->created_unix_ms < y->created_unix_ms ? -1 : 1;
	return strcmp(x->id, y->id);
}

/* GET /v2/sandboxes (and the older GET /sandboxes): the caller's running sandboxes, filtered
 * by metadata, paged by limit and nextToken (an offset). */
static enum MHD_Result list(struct srv_req *r)
{
	struct cr_err err = {0};
	json_t *filter = NULL;
	char meta[8192], state[128], l[32], t[32];
	int rm = srv_query_decoded(r, "metadata", meta, sizeof meta);
	if ((rm < 0 && rm != -ENOENT) || srv_query_decoded(r, "state", state, sizeof state) == -EINVAL ||
	    srv_query_decoded(r, "limit", l, sizeof l) == -EINVAL ||
	    srv_query_decoded(r, "nextToken", t, sizeof t) == -EINVAL)
		return srv_reply_error(r, 400, "invalid_argument", "a query parameter is too long or "
				       "malformed");
	if (e2b_parse_metadata_filter(rm == 0 ? meta : NULL, &filter, &err) < 0)
		return srv_reply_errno(r, -EINVAL, &err);
	if (!srv_query(r, "state"))
		state[0] = '\0';
	if (!srv_query(r, "limit"))
		l[0] = '\0';
	if (!srv_query(r, "nextToken"))
		t[0] = '\0';
	bool running = !*state || strstr(state, "running");
	unsigned long limit = 100, offset = 0;
	char *end;
	if (*l && ((limit = strtoul(l, &end, 10)) < 1 || limit > 1000 || *end)) {
		json_decref(filter);
		return srv_reply_error(r, 400, "invalid_argument", "'limit' must be 1..1000");
	}
	if (*t && ((offset = strtoul(t, &end, 10)) > 1000000 || *end)) {
		json_decref(filter);
		return srv_reply_error(r, 400, "invalid_argument", "'nextToken' is not one of ours");
	}
	struct srv_sandbox *mine = NULL;
	size_t n_mine = 0;
	if (srv_ids_list(r->key, &mine, &n_mine) < 0) {
		json_decref(filter);
		return srv_reply_error(r, 503, "unavailable", "out of memory");
	}
	qsort(mine, n_mine, sizeof *mine, by_creation);
	struct eng_session_info *all = NULL;
	size_t n_all = 0;
	int rc = 0;
	if (n_mine && running) {
		struct eng_client *cl = srv_engine_take(&err);
		rc = cl ? eng_client_list_sessions(cl, &all, &n_all, &err) : -ECONNREFUSED;
		srv_engine_give(cl, rc == 0);
	}
	json_t *arr = json_array();
	size_t matched = 0;
	bool more = false;
	for (size_t i = 0; rc == 0 && arr && running && i < n_mine; i++) {
		if (!e2b_metadata_matches(filter, mine[i].metadata))
			continue;
		for (size_t k = 0; k < n_all; k++) {
			if (all[k].session != mine[i].session || all[k].state == ENG_S_DEAD)
				continue;
			if (matched >= offset && json_array_size(arr) < limit) {
				struct e2b_sandbox_view v;
				view_of(&mine[i], &all[k], &v);
				json_array_append_new(arr, e2b_sandbox_detail(&v));
			} else if (matched >= offset) {
				more = true;
			}
			matched++;
		}
	}
	free(all);
	srv_ids_release(mine, n_mine);
	json_decref(filter);
	if (rc < 0) {
		json_decref(arr);
		return srv_reply_errno(r, rc, &err);
	}
	char next[32];
	snprintf(next, sizeof next, "%lu", offset + limit);
	return srv_reply_json_header(r, 200, arr, more ? "X-Next-Token" : NULL, next);
}

static enum MHD_Result get_one(struct srv_req *r)
{
	struct srv_sandbox sb;
	struct eng_session_info info;
	enum MHD_Result ret;
	if (!lookup(r, &sb, &ret))
		return ret;
	if (info_of(r, &sb, &info, &ret)) {
		struct e2b_sandbox_view v;
		view_of(&sb, &info, &v);
		ret = srv_reply_json(r, 200, e2b_sandbox_detail(&v));
	}
	json_decref(sb.metadata);
	return ret;
}

static enum MHD_Result metrics(struct srv_req *r)
{
	struct srv_sandbox sb;
	struct eng_session_info info;
	enum MHD_Result ret;
	if (!lookup(r, &sb, &ret))
		return ret;
	if (info_of(r, &sb, &info, &ret)) {
		struct e2b_sandbox_view v;
		view_of(&sb, &info, &v);
		json_t *m = e2b_sandbox_metrics(&v, srv_unix_ms());
		ret = srv_reply_json(r, 200, m ? json_pack("[o]", m) : NULL);
	}
	json_decref(sb.metadata);
	return ret;
}

static enum MHD_Result kill_one(struct srv_req *r)
{
	struct srv_sandbox sb;
	enum MHD_Result ret;
	if (!lookup(r, &sb, &ret))
		return ret;
	json_decref(sb.metadata);
	struct cr_err err = {0};
	struct eng_client *cl = srv_engine_take(&err);
	int rc = cl ? eng_client_destroy(cl, sb.session, &err) : -ECONNREFUSED;
	srv_engine_give(cl, rc == 0);
	if (rc < 0)
		return failed(r, &sb, rc, &err);
	srv_ids_remove(sb.id, r->key);
	return srv_reply_empty(r, 204);
}

static int set_lifetime(const struct srv_sandbox *sb, uint32_t s, struct cr_err *err)
{
	struct eng_client *cl = srv_engine_take(err);
	int rc = cl ? eng_client_set_lifetime(cl, sb->session, s, err) : -ECONNREFUSED;
	srv_engine_give(cl, rc == 0);
	return rc;
}

static enum MHD_Result set_timeout(struct srv_req *r)
{
	struct cr_err err = {0};
	bool present;
	uint32_t t = 0;
	int rc = e2b_parse_timeout(r->body.data, r->body.len, &present, &t, &err);
	if (rc == 0 && !present)
		rc = cr_failx(&err, EINVAL, "'timeout' (seconds) is required");
	if (rc < 0)
		return srv_reply_errno(r, rc, &err);
	struct srv_sandbox sb;
	enum MHD_Result ret;
	if (!lookup(r, &sb, &ret))
		return ret;
	json_decref(sb.metadata);
	rc = set_lifetime(&sb, t, &err);
	return rc < 0 ? failed(r, &sb, rc, &err) : srv_reply_empty(r, 204);
}

/* Sandbox.connect: a running sandbox's credentials again; a timeout given extends its life
 * (never shortens it), as E2B does for a running sandbox. */
static enum MHD_Result connect_one(struct srv_req *r)
{
	struct cr_err err = {0};
	bool present;
	uint32_t t = 0;
	int rc = e2b_parse_timeout(r->body.data, r->body.len, &present, &t, &err);
	if (rc < 0)
		return srv_reply_errno(r, rc, &err);
	struct srv_sandbox sb;
	struct eng_session_info info;
	enum MHD_Result ret;
	if (!lookup(r, &sb, &ret))
		return ret;
	if (!info_of(r, &sb, &info, &ret)) {
		json_decref(sb.metadata);
		return ret;
	}
	uint64_t now = srv_unix_ms();
	uint64_t left = info.expires_unix_ms > now ? (info.expires_unix_ms - now) / 1000 : 0;
	if (present && t > left && (rc = set_lifetime(&sb, t, &err)) < 0) {
		ret = failed(r, &sb, rc, &err);
	} else {
		struct e2b_sandbox_view v;
		view_of(&sb, &info, &v);
		ret = srv_reply_json(r, 200, e2b_sandbox_created(&v));
	}
	json_decref(sb.metadata);
	return ret;
}

/* What corral does not do: a clear 501 for the sandbox (if it exists) or a 404. */
static enum MHD_Result unsupported(struct srv_req *r, const char *what)
{
	if (srv_param(r, "id")) {
		struct srv_sandbox sb;
		enum MHD_Result ret;
		if (!lookup(r, &sb, &ret))
			return ret;
		json_decref(sb.metadata);
	}
	return srv_reply_error(r, 501, "not_implemented", "corral does not support %s", what);
}

static enum MHD_Result pause_one(struct srv_req *r)
{
	return unsupported(r, "pausing sandboxes (a sandbox runs until it is killed or times out)");
}

static enum MHD_Result resume_one(struct srv_req *r)
{
	return unsupported(r, "pausing and resuming sandboxes");
}

static enum MHD_Result snapshot(struct srv_req *r)
{
	return unsupported(r, "snapshots");
}

static enum MHD_Result fork_one(struct srv_req *r)
{
	return unsupported(r, "forking sandboxes");
}

static enum MHD_Result network(struct srv_req *r)
{
	return unsupported(r, "network rules: its sandboxes have no network at all");
}

#define API SRV_AUTH_API_KEY
#define E2B_ROUTE(m, p, b, h) {m, p, API, b, .handle = h, .dialect = SRV_E2B}

const struct srv_route srv_routes_e2b[] = {
	E2B_ROUTE("POST", "/v2/sandboxes", SRV_BODY_JSON, create),
	E2B_ROUTE("POST", "/sandboxes", SRV_BODY_JSON, create),
	E2B_ROUTE("GET", "/v2/sandboxes", SRV_BODY_NONE, list),
	E2B_ROUTE("GET", "/sandboxes", SRV_BODY_NONE, list),
	E2B_ROUTE("GET", "/sandboxes/{id}", SRV_BODY_NONE, get_one),
	E2B_ROUTE("DELETE", "/sandboxes/{id}", SRV_BODY_NONE, kill_one),
	E2B_ROUTE("GET", "/sandboxes/{id}/metrics", SRV_BODY_NONE, metrics),
	E2B_ROUTE("POST", "/sandboxes/{id}/timeout", SRV_BODY_JSON, set_timeout),
	E2B_ROUTE("POST", "/v2/sandboxes/{id}/connect", SRV_BODY_JSON, connect_one),
	E2B_ROUTE("POST", "/sandboxes/{id}/connect", SRV_BODY_JSON, connect_one),
	E2B_ROUTE("POST", "/sandboxes/{id}/pause", SRV_BODY_NONE, pause_one),
	E2B_ROUTE("POST", "/sandboxes/{id}/resume", SRV_BODY_NONE, resume_one),
	E2B_ROUTE("POST", "/sandboxes/{id}/snapshots", SRV_BODY_NONE, snapshot),
	E2B_ROUTE("GET", "/snapshots", SRV_BODY_NONE, snapshot),
	E2B_ROUTE("POST", "/sandboxes/{id}/fork", SRV_BODY_NONE, fork_one),
	E2B_ROUTE("PUT", "/sandboxes/{id}/network", SRV_BODY_NONE, network),
	{0},
};
