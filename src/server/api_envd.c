/* server/api_envd.c -- E2B's in-sandbox daemon ("envd", port 49983) as the official SDKs use
 * it: commands (process.Process, Connect RPC) and the filesystem (filesystem.Filesystem),
 * over the sandbox's corral session (file transfer, REST /files, is api_files.c).
 *
 * Reached without the API key: the sandbox's access token authenticates (SRV_AUTH_SANDBOX).
 * Connect RPC with the JSON codec only (the SDKs' choice): unary calls take and give
 * application/json; Process/Start streams enveloped messages (application/connect+json).
 * A command runs in the session like a cell (ENG_EXEC_COMMAND), so one thing runs at a time:
 * a second command or cell meanwhile is refused as busy.  Paths are the session's own
 * (relative ones under /home/user); the engine resolves them with openat2 beneath the
 * session's trees, so nothing outside them is reachable.  Everything runs as the sandbox's one
 * unprivileged user: asking for another user (root) is refused, not ignored.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/text.h"
#include "server/e2b_json.h"
#include "server/srv_internal.h"

#define LIST_MAX 10000        /* entries of one ListDir, all depths */
#define FS_COMMAND_MS 10000   /* mkdir / mv run in the sandbox */

enum MHD_Result srv_envd_failed(struct srv_req *r, int rc, const struct cr_err *err)
{
	if (rc == -ENOENT && err && !strncmp(err->msg, "no session ", 11)) {
		srv_ids_remove(r->sb.id, r->sb.owner);
		return srv_reply_error(r, 502, "sandbox_not_found", "the sandbox ended");
	}
	if (rc == -EBUSY)
		return srv_reply_error(r, 412, "busy", "the sandbox is running another command or "
				       "cell: corral runs one at a time");
	if (rc == -EEXIST)
		return srv_reply_error(r, 409, "exists", "%s", err && err->msg[0] ? err->msg
									       : "it exists");
	return srv_reply_errno(r, rc, err);
}

/* The user a request asks to act as (HTTP Basic "user:" or ?username=): only "user". */
bool srv_envd_user_ok(struct srv_req *r, enum MHD_Result *ret)
{
	char user[64] = "";
	const char *h = srv_header(r, MHD_HTTP_HEADER_AUTHORIZATION);
	if (srv_query(r, "username")) {
		if (srv_query_decoded(r, "username", user, sizeof user) < 0)
			snprintf(user, sizeof user, "?");
	} else if (h && !strncasecmp(h, "Basic ", 6)) {
		size_t n;
		char *d = cr_base64_decode(h + 6, strlen(h + 6), &n);
		if (d) {
			char *colon = memchr(d, ':', n);
			snprintf(user, sizeof user, "%.*s", (int)(colon ? colon - d : (ptrdiff_t)n), d);
		}
		free(d);
	}
	if (!user[0] || !strcmp(user, "user"))
		return true;
	*ret = srv_reply_error(r, 403, "forbidden", "user '%.40s' does not exist: corral runs "
			       "everything as the sandbox's one unprivileged user, 'user'", user);
	return false;
}

/* The one message of a unary call, or of a streaming call's envelope. */
static bool message(struct srv_req *r, const char **msg, size_t *len, enum MHD_Result *ret)
{
	struct cr_err err = {0};
	if (r->route->stream) {
		if (e2b_envelope_unwrap(r->body.data, r->body.len, msg, len, &err) < 0) {
			*ret = srv_reply_error(r, 400, "invalid_argument", "%s", err.msg);
			return false;
		}
		return true;
	}
	*msg = r->body.data ? r->body.data : "{}";
	*len = r->body.data ? r->body.len : 2;
	return true;
}

static enum MHD_Result unimplemented(struct srv_req *r)
{
	return srv_reply_error(r, 501, "not_implemented", "corral does not support %s",
			       strrchr(r->route->pattern, '/') + 1);
}

/* -- health ------------------------------------------------------------------------------ */

static enum MHD_Result health(struct srv_req *r)
{
	struct cr_err err = {0};
	struct eng_session_info info;
	struct eng_client *cl = srv_engine_take(&err);
	int rc = cl ? eng_client_info(cl, r->sb.session, &info, &err) : -ECONNREFUSED;
	srv_engine_give(cl, rc == 0);
	if (rc == -ENOENT || (rc == 0 && info.state == ENG_S_DEAD)) {
		srv_ids_remove(r->sb.id, r->sb.owner);
		return srv_reply_error(r, 502, "sandbox_not_found", "the sandbox ended");
	}
	return rc < 0 ? srv_reply_errno(r, rc, &err) : srv_reply_empty(r, 204);
}

/* -- processes --------------------------------------------------------------------------- */

struct proc_stream {
	char sandbox[SRV_ID_LEN + 1];
	json_t *config;
	char tag[SRV_TAG_MAX];
	bool started;
	char error[256];        /* the runner's error event, if the program did not start */
};

static int proc_event(void *ctx, uint32_t type, const char *data, size_t len, struct cr_buf *out)
{
	struct proc_stream *p = ctx;
	if (type == ENG_EV_STDOUT || type == ENG_EV_STDERR)
		return p->started ? e2b_process_data_event(out, type == ENG_EV_STDERR, data, len) : 0;
	if (type == ENG_EV_KEEPALIVE)
		return p->started ? e2b_process_keepalive_event(out) : 0;
	if (type != ENG_EV_JSON)
		return 0;
	json_t *e = json_loadb(data, len, 0, NULL);
	const char *t = json_string_value(json_object_get(e, "type"));
	int r = 0;
	if (t && !strcmp(t, "process") && !p->started &&
	    json_is_integer(json_object_get(e, "pid"))) {
		uint32_t pid = (uint32_t)json_integer_value(json_object_get(e, "pid"));
		p->started = true;
		srv_ids_set_process(p->sandbox, pid, p->tag, json_incref(p->config));
		r = e2b_process_start_event(out, pid);
	} else if (t && !strcmp(t, "error") && !p->started) {
		snprintf(p->error, sizeof p->error, "%s: %s",
			 json_string_value(json_object_get(e, "name")) ?: "Error",
			 json_string_value(json_object_get(e, "value")) ?: "");
	}
	json_decref(e);
	return r;
}

static int proc_finish(void *ctx, const struct eng_final *f, const char *error,
		       struct cr_buf *out)
{
	struct proc_stream *p = ctx;
	srv_ids_set_process(p->sandbox, 0, NULL, NULL);
	if (!f)
		return e2b_end_stream(out, "unavailable", error ? error : "the engine failed");
	if (!p->started)
		return e2b_end_stream(out, strstr(p->error, "NotFound") ? "not_found"
				      : strstr(p->error, "Permission") ? "permission_denied"
								       : "invalid_argument",
				      p->error[0] ? p->error : "the program could not be started");
	if (f->status == ENG_F_TIMEOUT) /* the client's deadline (Connect-Timeout-Ms) passed */
		return e2b_end_stream(out, "deadline_exceeded", "the command ran past its timeout "
				      "and was killed");
	struct eng_final g = *f;
	if (g.status == ENG_F_ERROR) { /* interrupted: SendSignal, or the client went away */
		g.status = ENG_F_OK;
		g.exit_code = -1;
		g.signal = 9;
	}
	int r = e2b_process_end_event(out, &g);
	return r < 0 ? r : e2b_end_stream(out, NULL, NULL);
}

static void proc_release(void *ctx)
{
	struct proc_stream *p = ctx;
	srv_ids_set_process(p->sandbox, 0, NULL, NULL);
	json_decref(p->config);
	free(p);
}

static const struct srv_cell_conv PROC_CONV = {proc_event, proc_finish, proc_release};

/* Connect's deadline for the call, in ms (0: none given). */
static uint32_t connect_timeout_ms(struct srv_req *r)
{
	const char *t = srv_header(r, "Connect-Timeout-Ms");
	char *end;
	unsigned long long v = t ? strtoull(t, &end, 10) : 0;
	if (!t || *end || !*t)
		return 0;
	return v > 24ULL * 3600 * 1000 ? 24u * 3600 * 1000 : v ? (uint32_t)v : 1;
}

static enum MHD_Result process_start(struct srv_req *r)
{
	const char *msg;
	size_t len;
	enum MHD_Result ret;
	if (!message(r, &msg, &len, &ret) || !srv_envd_user_ok(r, &ret))
		return ret;
	struct cr_err err = {0};
	struct cr_buf payload;
	cr_buf_init(&payload, ENG_MAX_CODE + 1);
	struct proc_stream *p = calloc(1, sizeof *p);
	int rc = p ? e2b_parse_process_start(msg, len, &payload, &p->config, p->tag, sizeof p->tag,
					     &err)
		   : cr_fail(&err, ENOMEM, "process");
	if (rc < 0) {
		cr_buf_free(&payload);
		if (p)
			proc_release(p);
		return srv_reply_errno(r, rc, &err);
	}
	snprintf(p->sandbox, sizeof p->sandbox, "%s", r->sb.id);
	struct srv_exec_req q;
	memset(&q, 0, sizeof q);
	q.code = payload.data;
	q.code_len = payload.len;
	q.command = true;
	q.timeout_ms = connect_timeout_ms(r);
	struct srv_cell_stream *s = NULL;
	rc = srv_cell_start(r, r->sb.session, &q, &PROC_CONV, p, &s, &err);
	cr_buf_free(&payload);
	if (rc < 0) {
		proc_release(p);
		return rc == -ECONNRESET ? MHD_NO : srv_envd_failed(r, rc, &err);
	}
	return srv_cell_reply(r, s, "application/connect+json");
}

static enum MHD_Result process_list(struct srv_req *r)
{
	uint32_t pid;
	char tag[SRV_TAG_MAX];
	json_t *config = NULL;
	json_t *procs = json_array();
	if (srv_ids_get_process(r->sb.id, &pid, tag, sizeof tag, &config) == 0) {
		json_t *p = json_pack("{s:o, s:I}", "config", config ? config : json_object(),
				      "pid", (json_int_t)pid);
		if (p && tag[0])
			json_object_set_new(p, "tag", json_string(tag));
		json_array_append_new(procs, p);
	}
	return srv_reply_json(r, 200, procs ? json_pack("{s:o}", "processes", procs) : NULL);
}

/* SIGKILL or SIGTERM to the running command: the session interrupts it, and the command's
 * whole process group is killed (the stream then ends with the kill). */
static enum MHD_Result process_signal(struct srv_req *r)
{
	const char *msg;
	size_t len;
	enum MHD_Result ret;
	if (!message(r, &msg, &len, &ret))
		return ret;
	struct cr_err err = {0};
	uint32_t want = 0, pid = 0;
	char tag[SRV_TAG_MAX], running_tag[SRV_TAG_MAX];
	int sig;
	int rc = e2b_parse_process_selector(msg, len, &want, tag, sizeof tag, &sig, &err);
	if (rc < 0)
		return srv_reply_errno(r, rc, &err);
	if (srv_ids_get_process(r->sb.id, &pid, running_tag, sizeof running_tag, NULL) < 0 ||
	    (want ? want != pid : strcmp(tag, running_tag) || !tag[0]))
		return srv_reply_error(r, 404, "not_found", "no such process is running");
	struct eng_client *cl = srv_engine_take(&err);
	rc = cl ? eng_client_interrupt(cl, r->sb.session, &err) : -ECONNREFUSED;
	srv_engine_give(cl, rc == 0);
	return rc < 0 ? srv_envd_failed(r, rc, &err) : srv_reply_json(r, 200, json_object());
}

/* -- filesystem -------------------------------------------------------------------------- */

static int list_dir(const struct srv_req *r, const char *path, struct eng_dirent **ents,
		    size_t *n, struct cr_err *err)
{
	struct eng_client *cl = srv_engine_take(err);
	int rc = cl ? eng_client_list(cl, r->sb.session, path, ents, n, err) : -ECONNREFUSED;
	srv_engine_give(cl, rc == 0 || rc == -ENOENT || rc == -EACCES || rc == -ENOTDIR ||
			    rc == -EINVAL);
	return rc;
}

static bool is_root(const char *path)
{
	static const char *const ROOTS[] = {"/", "/home/user", "/tmp", "/data", "/output", NULL};
	for (size_t i = 0; ROOTS[i]; i++)
		if (!strcmp(path, ROOTS[i]))
			return true;
	return false;
}

/* The entry of one path: its parent's listing, or a directory for the session's roots. */
static int stat_path(const struct srv_req *r, const char *path, json_t **entry,
		     struct cr_err *err)
{
	*entry = NULL;
	if (is_root(path)) {
		struct eng_dirent *ents = NULL;
		size_t n = 0;
		int rc = list_dir(r, path, &ents, &n, err);
		free(ents);
		if (rc < 0)
			return rc;
		struct eng_dirent d = {.type = 2};
		const char *slash = strrchr(path, '/');
		snprintf(d.name, sizeof d.name, "%s", slash[1] ? slash + 1 : "/");
		char parent[ENG_PATH_MAX];
		snprintf(parent, sizeof parent, "%.*s", (int)(slash - path), path);
		*entry = e2b_entry_json(parent[0] ? parent : "/", &d);
		if (!strcmp(path, "/"))
			json_object_set_new(*entry, "path", json_string("/"));
		return *entry ? 0 : -ENOMEM;
	}
	char parent[ENG_PATH_MAX];
	const char *slash = strrchr(path, '/');
	snprintf(parent, sizeof parent, "%.*s", (int)(slash - path), path);
	if (!parent[0])
		snprintf(parent, sizeof parent, "/");
	struct eng_dirent *ents = NULL;
	size_t n = 0;
	int rc = list_dir(r, parent, &ents, &n, err);
	for (size_t i = 0; rc == 0 && i < n && !*entry; i++)
		if (!strcmp(ents[i].name, slash + 1))
			*entry = e2b_entry_json(parent, &ents[i]);
	free(ents);
	if (rc == 0 && !*entry)
		rc = cr_failx(err, ENOENT, "%s does not exist", path);
	return rc;
}

static bool path_of(struct srv_req *r, const char *key, char *out, size_t n,
		    enum MHD_Result *ret)
{
	const char *msg;
	size_t len;
	if (!message(r, &msg, &len, ret) || !srv_envd_user_ok(r, ret))
		return false;
	struct cr_err err = {0};
	if (e2b_parse_path(msg, len, key, out, n, &err) < 0) {
		*ret = srv_reply_error(r, 400, "invalid_argument", "%s", err.msg);
		return false;
	}
	return true;
}

static enum MHD_Result fs_stat(struct srv_req *r)
{
	char path[ENG_PATH_MAX];
	enum MHD_Result ret;
	if (!path_of(r, "path", path, sizeof path, &ret))
		return ret;
	struct cr_err err = {0};
	json_t *e;
	int rc = stat_path(r, path, &e, &err);
	return rc < 0 ? srv_envd_failed(r, rc, &err) : srv_reply_json(r, 200, json_pack("{s:o}", "entry", e));
}

static enum MHD_Result fs_list(struct srv_req *r)
{
	char path[ENG_PATH_MAX];
	enum MHD_Result ret;
	if (!path_of(r, "path", path, sizeof path, &ret))
		return ret;
	const char *msg;
	size_t len;
	message(r, &msg, &len, &ret);
	struct cr_err err = {0};
	unsigned depth;
	if (e2b_parse_depth(msg, len, &depth, &err) < 0)
		return srv_reply_error(r, 400, "invalid_argument", "%s", err.msg);
	/* breadth first, depth levels, LIST_MAX entries at most */
	json_t *out = json_array(), *dirs = json_array();
	json_array_append_new(dirs, json_string(path));
	int rc = 0;
	for (unsigned level = 0; rc == 0 && level < depth && json_array_size(dirs); level++) {
		json_t *next = json_array();
		size_t i;
		json_t *d;
		json_array_foreach(dirs, i, d) {
			struct eng_dirent *ents = NULL;
			size_t n = 0;
			rc = list_dir(r, json_string_value(d), &ents, &n, &err);
			if (rc < 0 && level > 0) /* a subdirectory that went away meanwhile */
				rc = 0;
			for (size_t k = 0; k < n && json_array_size(out) < LIST_MAX; k++) {
				json_t *e = e2b_entry_json(json_string_value(d), &ents[k]);
				if (ents[k].type == 2)
					json_array_append(next, json_object_get(e, "path"));
				json_array_append_new(out, e);
			}
			free(ents);
			if (rc < 0)
				break;
		}
		json_decref(dirs);
		dirs = next;
	}
	json_decref(dirs);
	if (rc < 0) {
		json_decref(out);
		return srv_envd_failed(r, rc, &err);
	}
	return srv_reply_json(r, 200, json_pack("{s:o}", "entries", out));
}

static enum MHD_Result fs_remove(struct srv_req *r)
{
	char path[ENG_PATH_MAX];
	enum MHD_Result ret;
	if (!path_of(r, "path", path, sizeof path, &ret))
		return ret;
	struct cr_err err = {0};
	struct eng_client *cl = srv_engine_take(&err);
	int rc = cl ? eng_client_remove(cl, r->sb.session, path, &err) : -ECONNREFUSED;
	srv_engine_give(cl, rc == 0 || rc == -ENOENT || rc == -EACCES);
	return rc < 0 ? srv_envd_failed(r, rc, &err) : srv_reply_json(r, 200, json_object());
}

struct collect {
	struct cr_buf err;
};

static int collect_stderr(void *ctx, uint32_t type, const char *data, size_t len)
{
	struct collect *c = ctx;
	if (type == ENG_EV_STDERR)
		cr_buf_append_trunc(&c->err, data, len);
	return 0;
}

/* A filesystem change made inside the sandbox, by a program running as its user: what it
 * may do is exactly what the sandbox's own code may do. */
static int in_sandbox(const struct srv_req *r, const char *const *argv, struct cr_err *err)
{
	struct collect c;
	cr_buf_init(&c.err, 512);
	struct eng_final f;
	struct eng_client *cl = srv_engine_take(err);
	int rc = cl ? eng_client_command(cl, r->sb.session, NULL, argv, NULL, FS_COMMAND_MS,
					 collect_stderr, &c, &f, err)
		    : -ECONNREFUSED;
	srv_engine_give(cl, rc == 0 || rc == -EBUSY);
	if (rc == 0 && (f.status != ENG_F_OK || f.exit_code != 0)) {
		const char *m = c.err.data ? c.err.data : "";
		size_t n = c.err.len;
		while (n && (m[n - 1] == '\n' || m[n - 1] == ' '))
			n--;
		rc = cr_failx(err, strstr(m, "ermission denied") ? EACCES
				   : strstr(m, "No such file") ? ENOENT
								 : EINVAL,
			      "%s: %.*s", argv[0], (int)n, m);
	}
	cr_buf_free(&c.err);
	return rc;
}

static enum MHD_Result fs_mkdir(struct srv_req *r)
{
	char path[ENG_PATH_MAX];
	enum MHD_Result ret;
	if (!path_of(r, "path", path, sizeof path, &ret))
		return ret;
	struct cr_err err = {0};
	json_t *e = NULL;
	if (stat_path(r, path, &e, &err) == 0) {
		json_decref(e);
		return srv_reply_error(r, 409, "exists", "%s already exists", path);
	}
	const char *argv[] = {"mkdir", "-p", "--", path, NULL};
	int rc = in_sandbox(r, argv, &err);
	if (rc == 0)
		rc = stat_path(r, path, &e, &err);
	return rc < 0 ? srv_envd_failed(r, rc, &err) : srv_reply_json(r, 200, json_pack("{s:o}", "entry", e));
}

static enum MHD_Result fs_move(struct srv_req *r)
{
	char src[ENG_PATH_MAX], dst[ENG_PATH_MAX];
	enum MHD_Result ret;
	if (!path_of(r, "source", src, sizeof src, &ret) ||
	    !path_of(r, "destination", dst, sizeof dst, &ret))
		return ret;
	struct cr_err err = {0};
	const char *argv[] = {"mv", "-T", "--", src, dst, NULL};
	int rc = in_sandbox(r, argv, &err);
	json_t *e = NULL;
	if (rc == 0)
		rc = stat_path(r, dst, &e, &err);
	return rc < 0 ? srv_envd_failed(r, rc, &err) : srv_reply_json(r, 200, json_pack("{s:o}", "entry", e));
}

/* -- routes ------------------------------------------------------------------------------ */

#define SBX SRV_AUTH_SANDBOX
#define RPC(m, h) {"POST", m, SBX, SRV_BODY_JSON, .handle = h, .dialect = SRV_CONNECT}
#define STREAM(m, h) {"POST", m, SBX, SRV_BODY_JSON, .handle = h, .dialect = SRV_CONNECT, \
		      .stream = true}

const struct srv_route srv_routes_envd[] = {
	{"GET", "/health", SBX, SRV_BODY_NONE, .handle = health, .dialect = SRV_E2B},
	STREAM("/process.Process/Start", process_start),
	RPC("/process.Process/List", process_list),
	RPC("/process.Process/SendSignal", process_signal),
	STREAM("/process.Process/Connect", unimplemented),
	RPC("/process.Process/SendInput", unimplemented),
	RPC("/process.Process/StreamInput", unimplemented),
	RPC("/process.Process/CloseStdin", unimplemented),
	RPC("/process.Process/Update", unimplemented),
	RPC("/filesystem.Filesystem/Stat", fs_stat),
	RPC("/filesystem.Filesystem/ListDir", fs_list),
	RPC("/filesystem.Filesystem/MakeDir", fs_mkdir),
	RPC("/filesystem.Filesystem/Move", fs_move),
	RPC("/filesystem.Filesystem/Remove", fs_remove),
	STREAM("/filesystem.Filesystem/WatchDir", unimplemented),
	RPC("/filesystem.Filesystem/CreateWatcher", unimplemented),
	RPC("/filesystem.Filesystem/GetWatcherEvents", unimplemented),
	RPC("/filesystem.Filesystem/RemoveWatcher", unimplemented),
	{0},
};
