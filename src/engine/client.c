/* engine/client.c -- blocking client of the engine manager (see engine.h).
 *
 * One operation at a time per connection.  Every reply frame is bounded (ENG_MAX_RUNNER_FRAME
 * for events, which may carry figures) and checked for its exact layout before use; an error
 * frame becomes -errnum with the manager's message in err.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "engine/engine.h"

struct eng_client {
	int fd;
	struct cr_buf in;
	pid_t daemon_pid;
};

static int expect(struct eng_client *c, uint32_t type, void *out, size_t size, struct cr_err *err);
static int send_req(struct eng_client *c, uint32_t type, const void *a, size_t an, const void *b,
		    size_t bn, struct cr_err *err);

pid_t eng_client_daemon_pid(const struct eng_client *c)
{
	return c->daemon_pid;
}

struct eng_client *eng_client_from_fd(int fd)
{
	struct eng_client *c = calloc(1, sizeof *c);
	if (!c) {
		close(fd);
		return NULL;
	}
	c->fd = fd;
	cr_buf_init(&c->in, ENG_MAX_RUNNER_FRAME);
	return c;
}

struct eng_client *eng_client_connect(const char *path, struct cr_err *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof sa.sun_path) {
		cr_failx(err, ENAMETOOLONG, "socket path too long");
		return NULL;
	}
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		cr_fail(err, errno, "socket");
		return NULL;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		cr_fail(err, errno, "connect to the engine at %s", path);
		close(fd);
		return NULL;
	}
	struct eng_client *c = eng_client_from_fd(fd);
	if (!c) {
		cr_fail(err, ENOMEM, "client");
		return NULL;
	}
	struct eng_req_hello hello = ENG_HELLO_INIT;
	struct eng_rsp_ok ok;
	if (send_req(c, ENG_REQ_HELLO, &hello, sizeof hello, NULL, 0, err) < 0 ||
	    expect(c, ENG_RSP_OK, &ok, sizeof ok, err) < 0) {
		if (err->code == EPROTO || err->code == EINVAL)
			err->code = EPROTO;
		eng_client_close(c);
		return NULL;
	}
	c->daemon_pid = (pid_t)ok.value;
	return c;
}

void eng_client_close(struct eng_client *c)
{
	if (!c)
		return;
	close(c->fd);
	cr_buf_free(&c->in);
	free(c);
}

int eng_client_fd(const struct eng_client *c)
{
	return c->fd;
}

/* Reads one frame; turns ENG_RSP_ERROR into -errnum. */
static int recv_frame(struct eng_client *c, struct eng_frame_hdr *h, struct cr_err *err)
{
	int r = eng_frame_read(c->fd, h, &c->in, ENG_MAX_RUNNER_FRAME);
	if (r < 0)
		return cr_fail(err, -r, "reading from the engine");
	if (h->type == ENG_RSP_ERROR) {
		struct eng_rsp_error e;
		if (h->len != sizeof e)
			return cr_failx(err, EPROTO, "malformed error from the engine");
		memcpy(&e, c->in.data, sizeof e);
		e.message[sizeof e.message - 1] = '\0';
		return cr_failx(err, e.errnum > 0 ? e.errnum : EIO, "%s", e.message);
	}
	return 0;
}

static int expect(struct eng_client *c, uint32_t type, void *out, size_t size, struct cr_err *err)
{
	struct eng_frame_hdr h;
	int r = recv_frame(c, &h, err);
	if (r < 0)
		return r;
	if (h.type != type || h.len != size)
		return cr_failx(err, EPROTO, "unexpected reply %u (%u bytes) from the engine", h.type,
				h.len);
	if (out)
		memcpy(out, c->in.data, size);
	return 0;
}

static int send_req(struct eng_client *c, uint32_t type, const void *a, size_t an, const void *b,
		    size_t bn, struct cr_err *err)
{
	int r = eng_frame_write2(c->fd, type, a, an, b, bn);
	return r < 0 ? cr_fail(err, -r, "writing to the engine") : 0;
}

int eng_client_create(struct eng_client *c, const struct eng_req_create *req,
		      const struct eng_mount *mounts, struct eng_rsp_created *out,
		      struct cr_err *err)
{
	int r = send_req(c, ENG_REQ_CREATE, req, sizeof *req, mounts,
			 mounts ? req->n_mounts * sizeof *mounts : 0, err);
	return r < 0 ? r : expect(c, ENG_RSP_CREATED, out, sizeof *out, err);
}

int eng_client_lookup(struct eng_client *c, const char *name, struct eng_rsp_created *out,
		      struct cr_err *err)
{
	struct eng_req_lookup req;
	memset(&req, 0, sizeof req);
	snprintf(req.name, sizeof req.name, "%s", name);
	int r = send_req(c, ENG_REQ_LOOKUP, &req, sizeof req, NULL, 0, err);
	return r < 0 ? r : expect(c, ENG_RSP_CREATED, out, sizeof *out, err);
}

/* Delivers events until FINAL.  A callback that returns non-zero ends the call with
 * -ECANCELED: the caller then closes the connection, which makes the manager interrupt the
 * cell (a connection is busy until FINAL, so it cannot carry another request). */
static int event_stream(struct eng_client *c, eng_event_cb cb, void *ctx, struct eng_final *final,
			struct cr_err *err)
{
	for (;;) {
		struct eng_frame_hdr h;
		int r = recv_frame(c, &h, err);
		if (r < 0)
			return r;
		switch (h.type) {
		case ENG_EV_FINAL:
			if (h.len != sizeof *final)
				return cr_failx(err, EPROTO, "malformed final event");
			memcpy(final, c->in.data, sizeof *final);
			return 0;
		case ENG_EV_STDOUT:
		case ENG_EV_STDERR:
		case ENG_EV_JSON:
		case ENG_EV_KEEPALIVE:
			if (cb && cb(ctx, h.type, c->in.data ? c->in.data : "", h.len))
				return cr_failx(err, ECANCELED, "stopped by the caller");
			break;
		default:
			return cr_failx(err, EPROTO, "unexpected event %u from the engine", h.type);
		}
	}
}

int eng_client_execute(struct eng_client *c, uint64_t session, const char *code,
		       const char *context, uint32_t timeout_ms, uint32_t flags, eng_event_cb cb,
		       void *ctx, struct eng_final *final, struct cr_err *err)
{
	struct eng_req_execute req;
	memset(&req, 0, sizeof req);
	req.session = session;
	req.timeout_ms = timeout_ms;
	req.flags = flags;
	snprintf(req.context, sizeof req.context, "%s", context ? context : "default");
	size_t n = strlen(code);
	if (n > ENG_MAX_CODE)
		return cr_failx(err, E2BIG, "cell of %zu bytes exceeds the %u byte limit", n,
				ENG_MAX_CODE);
	int r = send_req(c, ENG_REQ_EXECUTE, &req, sizeof req, code, n, err);
	return r < 0 ? r : event_stream(c, cb, ctx, final, err);
}

int eng_cmd_encode(const char *cwd, const char *const *argv, const char *const *env,
		   struct cr_buf *out, struct cr_err *err)
{
	struct eng_cmd_hdr h = {0, 0};
	while (argv && argv[h.argc])
		h.argc++;
	while (env && env[h.envc])
		h.envc++;
	if (h.argc < 1 || h.argc > ENG_CMD_ARGS_MAX || h.envc > ENG_CMD_ENV_MAX)
		return cr_failx(err, EINVAL, "a command takes 1..%u arguments and at most %u "
				"variables", ENG_CMD_ARGS_MAX, ENG_CMD_ENV_MAX);
	cr_buf_reset(out);
	int r = cr_buf_append(out, &h, sizeof h);
	r = r < 0 ? r : cr_buf_append(out, cwd ? cwd : "", strlen(cwd ? cwd : "") + 1);
	for (uint32_t i = 0; r >= 0 && i < h.argc; i++)
		r = cr_buf_append(out, argv[i], strlen(argv[i]) + 1);
	for (uint32_t i = 0; r >= 0 && i < h.envc; i++) {
		if (!strchr(env[i], '=') || env[i][0] == '=')
			return cr_failx(err, EINVAL, "command variables are NAME=value");
		r = cr_buf_append(out, env[i], strlen(env[i]) + 1);
	}
	if (r < 0 || out->len > ENG_MAX_CODE)
		return cr_failx(err, E2BIG, "the command exceeds %u bytes", ENG_MAX_CODE);
	return 0;
}

int eng_client_command(struct eng_client *c, uint64_t session, const char *cwd,
		       const char *const *argv, const char *const *env, uint32_t timeout_ms,
		       eng_event_cb cb, void *ctx, struct eng_final *final, struct cr_err *err)
{
	struct cr_buf p;
	cr_buf_init(&p, ENG_MAX_CODE + 1);
	int r = eng_cmd_encode(cwd, argv, env, &p, err);
	struct eng_req_execute req;
	memset(&req, 0, sizeof req);
	req.session = session;
	req.timeout_ms = timeout_ms;
	req.flags = ENG_EXEC_COMMAND;
	snprintf(req.context, sizeof req.context, "default");
	if (r == 0)
		r = send_req(c, ENG_REQ_EXECUTE, &req, sizeof req, p.data, p.len, err);
	cr_buf_free(&p);
	return r < 0 ? r : event_stream(c, cb, ctx, final, err);
}

int eng_client_interrupt(struct eng_client *c, uint64_t session, struct cr_err *err)
{
	struct eng_req_session req = {.session = session};
	int r = send_req(c, ENG_REQ_INTERRUPT, &req, sizeof req, NULL, 0, err);
	return r < 0 ? r : expect(c, ENG_RSP_OK, NULL, sizeof(struct eng_rsp_ok), err);
}

int eng_client_context(struct eng_client *c, uint64_t session, const char *name, bool create,
		       struct cr_err *err)
{
	struct eng_req_ctx req;
	memset(&req, 0, sizeof req);
	req.session = session;
	snprintf(req.context, sizeof req.context, "%s", name);
	int r = send_req(c, create ? ENG_REQ_CTX_CREATE : ENG_REQ_CTX_DELETE, &req, sizeof req,
			 NULL, 0, err);
	if (r < 0)
		return r;
	struct eng_final f;
	struct cr_buf ev;
	cr_buf_init(&ev, 1 << 16);
	for (;;) {
		struct eng_frame_hdr h;
		r = recv_frame(c, &h, err);
		if (r < 0)
			break;
		if (h.type == ENG_EV_JSON) {
			cr_buf_reset(&ev);
			cr_buf_append_trunc(&ev, c->in.data, h.len);
			continue;
		}
		if (h.type == ENG_EV_FINAL && h.len == sizeof f) {
			memcpy(&f, c->in.data, sizeof f);
			if (f.status != ENG_F_OK)
				r = cr_failx(err, f.status == ENG_F_ERROR ? EINVAL : EIO,
					     "context %s failed: %.200s", name,
					     ev.data ? ev.data : eng_final_status_name(f.status));
			break;
		}
		if (h.type != ENG_EV_STDOUT && h.type != ENG_EV_STDERR && h.type != ENG_EV_KEEPALIVE) {
			r = cr_failx(err, EPROTO, "unexpected reply %u", h.type);
			break;
		}
	}
	cr_buf_free(&ev);
	return r;
}

int eng_client_write_file(struct eng_client *c, uint64_t session, const char *path,
			  const void *data, size_t len, struct cr_err *err)
{
	struct eng_req_file req;
	memset(&req, 0, sizeof req);
	req.session = session;
	req.size = len;
	if (snprintf(req.path, sizeof req.path, "%s", path) >= (int)sizeof req.path)
		return cr_failx(err, ENAMETOOLONG, "path too long");
	int r = send_req(c, ENG_REQ_FILE_WRITE, &req, sizeof req, NULL, 0, err);
	for (size_t off = 0; r == 0 && off < len; off += ENG_FILE_CHUNK) {
		size_t n = len - off < ENG_FILE_CHUNK ? len - off : ENG_FILE_CHUNK;
		r = send_req(c, ENG_REQ_DATA, (const char *)data + off, n, NULL, 0, err);
	}
	return r < 0 ? r : expect(c, ENG_RSP_OK, NULL, sizeof(struct eng_rsp_ok), err);
}

int eng_client_read_file(struct eng_client *c, uint64_t session, const char *path,
			 struct cr_buf *out, struct cr_err *err)
{
	struct eng_req_file req;
	memset(&req, 0, sizeof req);
	req.session = session;
	if (snprintf(req.path, sizeof req.path, "%s", path) >= (int)sizeof req.path)
		return cr_failx(err, ENAMETOOLONG, "path too long");
	int r = send_req(c, ENG_REQ_FILE_READ, &req, sizeof req, NULL, 0, err);
	struct eng_rsp_file_info info;
	if (r == 0)
		r = expect(c, ENG_RSP_FILE_INFO, &info, sizeof info, err);
	if (r < 0)
		return r;
	bool too_big = info.size > out->max - out->len;
	for (;;) {
		struct eng_frame_hdr h;
		r = recv_frame(c, &h, err);
		if (r < 0)
			return r;
		if (h.type == ENG_RSP_OK)
			break;
		if (h.type != ENG_RSP_DATA)
			return cr_failx(err, EPROTO, "unexpected reply %u", h.type);
		if (!too_big && cr_buf_append(out, c->in.data, h.len) < 0)
			too_big = true;
	}
	if (too_big)
		return cr_failx(err, EFBIG, "%s is larger than %zu bytes", path, out->max);
	return 0;
}

static int list_common(struct eng_client *c, uint32_t type, const void *req, size_t rlen,
		       struct eng_dirent **out, size_t *n, struct cr_err *err)
{
	*out = NULL;
	*n = 0;
	int r = send_req(c, type, req, rlen, NULL, 0, err);
	size_t cap = 0;
	while (r == 0) {
		struct eng_frame_hdr h;
		r = recv_frame(c, &h, err);
		if (r < 0)
			break;
		if (h.type == ENG_RSP_OK)
			return 0;
		if (h.type != ENG_RSP_ENTRY || h.len < sizeof(struct eng_rsp_entry)) {
			r = cr_failx(err, EPROTO, "unexpected reply %u", h.type);
			break;
		}
		if (*n == cap) {
			cap = cap ? cap * 2 : 32;
			struct eng_dirent *nd = realloc(*out, cap * sizeof **out);
			if (!nd) {
				r = cr_fail(err, ENOMEM, "listing");
				break;
			}
			*out = nd;
		}
		struct eng_rsp_entry e;
		memcpy(&e, c->in.data, sizeof e);
		struct eng_dirent *d = &(*out)[(*n)++];
		memset(d, 0, sizeof *d);
		d->type = e.type;
		d->size = e.size;
		d->mtime = e.mtime;
		const char *name = c->in.data + sizeof e;
		size_t nl = h.len - sizeof e;
		size_t first = strnlen(name, nl);
		snprintf(d->name, sizeof d->name, "%.*s", (int)first, name);
		if (first + 1 < nl)
			snprintf(d->reason, sizeof d->reason, "%.*s", (int)(nl - first - 1),
				 name + first + 1);
	}
	free(*out);
	*out = NULL;
	*n = 0;
	return r;
}

int eng_client_list(struct eng_client *c, uint64_t session, const char *path,
		    struct eng_dirent **out, size_t *n, struct cr_err *err)
{
	struct eng_req_file req;
	memset(&req, 0, sizeof req);
	req.session = session;
	snprintf(req.path, sizeof req.path, "%s", path);
	return list_common(c, ENG_REQ_FILE_LIST, &req, sizeof req, out, n, err);
}

int eng_client_collect(struct eng_client *c, uint64_t session, const char *host_dir,
		       struct eng_dirent **out, size_t *n, struct cr_err *err)
{
	struct eng_req_collect req;
	memset(&req, 0, sizeof req);
	req.session = session;
	snprintf(req.host_dir, sizeof req.host_dir, "%s", host_dir);
	return list_common(c, ENG_REQ_COLLECT, &req, sizeof req, out, n, err);
}

int eng_client_remove(struct eng_client *c, uint64_t session, const char *path,
		      struct cr_err *err)
{
	struct eng_req_file req;
	memset(&req, 0, sizeof req);
	req.session = session;
	snprintf(req.path, sizeof req.path, "%s", path);
	int r = send_req(c, ENG_REQ_FILE_REMOVE, &req, sizeof req, NULL, 0, err);
	return r < 0 ? r : expect(c, ENG_RSP_OK, NULL, sizeof(struct eng_rsp_ok), err);
}

int eng_client_info(struct eng_client *c, uint64_t session, struct eng_session_info *out,
		    struct cr_err *err)
{
	struct eng_req_session req = {.session = session};
	int r = send_req(c, ENG_REQ_INFO, &req, sizeof req, NULL, 0, err);
	return r < 0 ? r : expect(c, ENG_RSP_INFO, out, sizeof *out, err);
}

int eng_client_list_sessions(struct eng_client *c, struct eng_session_info **out, size_t *n,
			     struct cr_err *err)
{
	*out = NULL;
	*n = 0;
	int r = send_req(c, ENG_REQ_LIST, NULL, 0, NULL, 0, err);
	size_t cap = 0;
	while (r == 0) {
		struct eng_frame_hdr h;
		r = recv_frame(c, &h, err);
		if (r < 0)
			break;
		if (h.type == ENG_RSP_OK)
			return 0;
		if (h.type != ENG_RSP_INFO || h.len != sizeof **out) {
			r = cr_failx(err, EPROTO, "unexpected reply %u", h.type);
			break;
		}
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			struct eng_session_info *ni = realloc(*out, cap * sizeof **out);
			if (!ni) {
				r = cr_fail(err, ENOMEM, "listing");
				break;
			}
			*out = ni;
		}
		memcpy(&(*out)[(*n)++], c->in.data, sizeof **out);
	}
	free(*out);
	*out = NULL;
	*n = 0;
	return r;
}

int eng_client_set_lifetime(struct eng_client *c, uint64_t session, uint32_t lifetime_s,
			    struct cr_err *err)
{
	struct eng_req_lifetime req = {.session = session, .lifetime_s = lifetime_s};
	int r = send_req(c, ENG_REQ_SET_LIFETIME, &req, sizeof req, NULL, 0, err);
	return r < 0 ? r : expect(c, ENG_RSP_OK, NULL, sizeof(struct eng_rsp_ok), err);
}

int eng_client_destroy(struct eng_client *c, uint64_t session, struct cr_err *err)
{
	struct eng_req_session req = {.session = session};
	int r = send_req(c, ENG_REQ_DESTROY, &req, sizeof req, NULL, 0, err);
	return r < 0 ? r : expect(c, ENG_RSP_OK, NULL, sizeof(struct eng_rsp_ok), err);
}

int eng_client_stats(struct eng_client *c, struct eng_stats *out, struct cr_err *err)
{
	int r = send_req(c, ENG_REQ_STATS, NULL, 0, NULL, 0, err);
	return r < 0 ? r : expect(c, ENG_RSP_STATS, out, sizeof *out, err);
}
