/* engine/requests.c -- the manager's request table: each client request's fixed layout is
 * checked here (sizes, NUL-terminated strings, environment blocks, ids, who may ask for what)
 * before any session sees it, then dispatched to the session, cell or file operation. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "engine/manager_internal.h"

#define NEED(type)                                                                      \
	do {                                                                            \
		if (len < sizeof(type)) {                                               \
			client_error(c, EINVAL, "request %u: %zu bytes, need %zu", t, len, \
				     sizeof(type));                                     \
			return;                                                         \
		}                                                                       \
	} while (0)

static bool str_ok(const char *s, size_t n)
{
	return memchr(s, '\0', n) != NULL;
}

/* "K=V\0K=V\0\0" with valid names, inside n bytes */
static bool env_block_ok(const char *b, size_t n)
{
	size_t i = 0;
	while (i < n && b[i]) {
		size_t start = i;
		bool name = true, eq = false;
		for (; i < n && b[i]; i++) {
			char ch = b[i];
			if (name && ch == '=') {
				if (i == start)
					return false;
				name = false;
				eq = true;
			} else if (name && !(ch == '_' || (ch >= 'A' && ch <= 'Z') ||
					     (ch >= 'a' && ch <= 'z') || (i > start && ch >= '0' && ch <= '9'))) {
				return false;
			}
		}
		if (i >= n || !eq)
			return false;
		i++;
	}
	return i < n;
}

static struct session *need_session(struct client *c, uint64_t id)
{
	struct session *s = session_find(c->m, id);
	if (!s || s->state == S_DEAD || s->state == S_POOLED || s->state == S_SPAWNING) {
		client_error(c, ENOENT, "no session %llu", (unsigned long long)id);
		return NULL;
	}
	return s;
}

void mgr_handle_request(struct client *c, uint32_t t, const char *p, size_t len)
{
	struct mgr *m = c->m;
	if (c->op == OP_FILE_WRITE) {
		if (t != ENG_REQ_DATA) {
			client_error(c, EPROTO, "expected file data");
			c->dead = true;
			return;
		}
		files_write_data(c, p, len);
		return;
	}
	if (c->op != OP_NONE) {
		client_error(c, EBUSY, "one operation at a time per connection");
		c->dead = true;
		return;
	}
	switch (t) {
	case ENG_REQ_HELLO: {
		struct eng_req_hello mine = ENG_HELLO_INIT, theirs;
		if (len != sizeof theirs) {
			client_error(c, EPROTO, "engine protocol mismatch (version %u here)", ENG_WIRE_VERSION);
			return;
		}
		memcpy(&theirs, p, sizeof theirs);
		theirs.daemon_pid = 0;
		if (memcmp(&mine, &theirs, sizeof mine)) {
			client_error(c, EPROTO, "engine protocol mismatch: client v%u, engine v%u",
				     theirs.version, ENG_WIRE_VERSION);
			return;
		}
		client_ok(c, (uint64_t)getpid());
		break;
	}
	case ENG_REQ_CREATE: {
		NEED(struct eng_req_create);
		struct eng_req_create req;
		memcpy(&req, p, sizeof req);
		if (!str_ok(req.name, sizeof req.name) ||
		    !str_ok(req.allow_imports, sizeof req.allow_imports) || req.mode > ENG_STATELESS) {
			client_error(c, EINVAL, "malformed create request");
			return;
		}
		if (req.n_mounts > SBX_MAX_MOUNTS ||
		    len != sizeof req + req.n_mounts * sizeof(struct eng_mount)) {
			client_error(c, EINVAL, "malformed mount list");
			return;
		}
		if (!env_block_ok(req.env, sizeof req.env)) {
			client_error(c, EINVAL, "malformed environment block");
			return;
		}
		if ((req.n_mounts || req.want_output) && !c->trusted) {
			client_error(c, EPERM, "host mounts and /output collection need a trusted client");
			return;
		}
		session_create(c, &req, (const struct eng_mount *)(p + sizeof req));
		break;
	}
	case ENG_REQ_LOOKUP: {
		NEED(struct eng_req_lookup);
		const struct eng_req_lookup *req = (const void *)p;
		if (!str_ok(req->name, sizeof req->name)) {
			client_error(c, EINVAL, "malformed name");
			return;
		}
		struct session *s = session_find_name(m, req->name);
		if (!s || s->state == S_DEAD) {
			client_error(c, ENOENT, "no session named '%s'", req->name);
			return;
		}
		struct eng_rsp_created r = {.session = s->id, .mode = s->mode};
		snprintf(r.python, sizeof r.python, "%s", m->python);
		client_send(c, ENG_RSP_CREATED, &r, sizeof r);
		break;
	}
	case ENG_REQ_EXECUTE: {
		NEED(struct eng_req_execute);
		struct eng_req_execute req;
		memcpy(&req, p, sizeof req);
		if (!str_ok(req.context, sizeof req.context)) {
			client_error(c, EINVAL, "malformed context name");
			return;
		}
		struct session *s = need_session(c, req.session);
		if (s)
			session_execute(c, s, &req, p + sizeof req, len - sizeof req);
		break;
	}
	case ENG_REQ_CTX_CREATE:
	case ENG_REQ_CTX_DELETE: {
		NEED(struct eng_req_ctx);
		const struct eng_req_ctx *req = (const void *)p;
		if (!str_ok(req->context, sizeof req->context) || !req->context[0]) {
			client_error(c, EINVAL, "malformed context name");
			return;
		}
		struct session *s = need_session(c, req->session);
		if (s)
			session_context(c, s, req->context, t == ENG_REQ_CTX_CREATE);
		break;
	}
	case ENG_REQ_FILE_WRITE:
	case ENG_REQ_FILE_READ:
	case ENG_REQ_FILE_LIST:
	case ENG_REQ_FILE_REMOVE: {
		NEED(struct eng_req_file);
		struct eng_req_file req;
		memcpy(&req, p, sizeof req);
		if (!str_ok(req.path, sizeof req.path)) {
			client_error(c, EINVAL, "malformed path");
			return;
		}
		struct session *s = need_session(c, req.session);
		if (!s)
			return;
		if (t == ENG_REQ_FILE_WRITE)
			files_write_begin(c, s, &req);
		else if (t == ENG_REQ_FILE_READ)
			files_read_begin(c, s, &req);
		else if (t == ENG_REQ_FILE_LIST)
			files_list(c, s, &req);
		else
			files_remove(c, s, &req);
		break;
	}
	case ENG_REQ_COLLECT: {
		NEED(struct eng_req_collect);
		struct eng_req_collect req;
		memcpy(&req, p, sizeof req);
		if (!c->trusted) {
			client_error(c, EPERM, "collecting into a host directory needs a trusted client");
			return;
		}
		if (!str_ok(req.host_dir, sizeof req.host_dir)) {
			client_error(c, EINVAL, "malformed directory");
			return;
		}
		struct session *s = need_session(c, req.session);
		if (s)
			files_collect(c, s, &req);
		break;
	}
	case ENG_REQ_INFO: {
		NEED(struct eng_req_session);
		struct session *s = need_session(c, ((const struct eng_req_session *)p)->session);
		if (!s)
			return;
		struct eng_session_info info;
		session_fill_info(s, &info);
		client_send(c, ENG_RSP_INFO, &info, sizeof info);
		break;
	}
	case ENG_REQ_LIST: {
		uint64_t n = 0;
		for (struct session *s = m->sessions; s; s = s->next) {
			if (s->state == S_IDLE || s->state == S_BUSY) {
				struct eng_session_info info;
				session_fill_info(s, &info);
				client_send(c, ENG_RSP_INFO, &info, sizeof info);
				n++;
			}
		}
		client_ok(c, n);
		break;
	}
	case ENG_REQ_DESTROY: {
		NEED(struct eng_req_session);
		struct session *s = need_session(c, ((const struct eng_req_session *)p)->session);
		if (!s)
			return;
		session_kill(s, "destroyed");
		client_ok(c, 0);
		break;
	}
	case ENG_REQ_SET_LIFETIME: {
		NEED(struct eng_req_lifetime);
		const struct eng_req_lifetime *req = (const void *)p;
		struct session *s = need_session(c, req->session);
		if (!s)
			return;
		if (req->lifetime_s == 0 || req->lifetime_s > 7 * 24 * 3600) {
			client_error(c, EINVAL, "lifetime must be between 1 s and 7 days");
			return;
		}
		s->expires_ms = mgr_now_ms() + (uint64_t)req->lifetime_s * 1000;
		client_ok(c, s->expires_ms);
		break;
	}
	case ENG_REQ_STATS: {
		struct eng_stats st = m->stats;
		st.sessions_live = m->n_live;
		st.pool_ready = m->n_pool;
		st.pool_target = m->cfg->pool_size;
		client_send(c, ENG_RSP_STATS, &st, sizeof st);
		break;
	}
	case ENG_REQ_INTERRUPT: {
		NEED(struct eng_req_session);
		struct session *s = need_session(c, ((const struct eng_req_session *)p)->session);
		if (s)
			session_interrupt(s);
		if (s)
			client_ok(c, 0);
		break;
	}
	default:
		client_error(c, EINVAL, "unknown request %u", t);
		c->dead = true;
	}
}
