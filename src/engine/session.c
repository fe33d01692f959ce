/* engine/session.c -- the zygote, the warm pool, and each session's life: spawn, claim, cells,
 * interrupts, limits, death.
 *
 * A session is three fds to its sandbox (ctl: its init, SEQPACKET; chan: its runner, framed
 * STREAM; out/err: pipes for fd-level output) plus a pidfd for its init, which is our child
 * (the zygote clones with CLONE_PARENT).  States: SPAWNING -> POOLED (contained, waiting for a
 * client) or IDLE (claimed) <-> BUSY (a cell runs) -> DEAD.  Everything a session sends is
 * forwarded to the client of the running cell without being parsed, except the fixed-layout
 * DONE record; the per-cell verdict (timeout, memory limit, killed) is decided here from our own
 * timers and the session's cgroup counters.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/text.h"
#include "engine/manager_internal.h"
#include "engine/zygote_proto.h"
#include "sandbox/contain.h"

static const char *const SESSION_ENV[] = {
	"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/home/user", "LANG=C.UTF-8", "LC_ALL=C.UTF-8",
	"MPLBACKEND=Agg", "MPLCONFIGDIR=/tmp/.matplotlib", "PYTHONDONTWRITEBYTECODE=1",
	"OPENBLAS_NUM_THREADS=1", "OMP_NUM_THREADS=1", NULL,
};

/* ---- sessions: bookkeeping -------------------------------------------------------------- */

struct session *session_find(struct mgr *m, uint64_t id)
{
	for (struct session *s = m->sessions; s; s = s->next)
		if (s->id == id)
			return s;
	return NULL;
}

struct session *session_find_name(struct mgr *m, const char *name)
{
	for (struct session *s = m->sessions; s; s = s->next)
		if (s->name[0] && !strcmp(s->name, name) && s->state != S_DEAD)
			return s;
	return NULL;
}

static int take_slot(struct mgr *m)
{
	for (unsigned i = 1; i < 65536; i++) {
		if (!(m->slots[i / 8] & (1u << (i % 8)))) {
			m->slots[i / 8] |= (unsigned char)(1u << (i % 8));
			return (int)i;
		}
	}
	return -1;
}

static void give_slot(struct mgr *m, uint32_t slot)
{
	if (slot > 0 && slot < 65536)
		m->slots[slot / 8] &= (unsigned char)~(1u << (slot % 8));
}

struct sbx_limits to_sbx(const struct eng_limits *l)
{
	struct sbx_limits s = sbx_limits_default;
	s.memory_bytes = l->memory_bytes;
	s.pids = l->pids;
	s.cpus = l->cpus_milli / 1000.0;
	s.timeout_ms = 0; /* per cell, by us */
	s.tmp_bytes = l->tmp_bytes;
	s.file_size_bytes = l->file_size_bytes;
	return s;
}

static void fill_limits(struct eng_limits *l, const struct eng_limits *dflt)
{
	if (!l->memory_bytes)
		l->memory_bytes = dflt->memory_bytes;
	if (!l->pids)
		l->pids = dflt->pids;
	if (!l->cell_timeout_ms)
		l->cell_timeout_ms = dflt->cell_timeout_ms;
	if (!l->idle_timeout_s)
		l->idle_timeout_s = dflt->idle_timeout_s;
	if (!l->lifetime_s)
		l->lifetime_s = dflt->lifetime_s;
	if (!l->tmp_bytes)
		l->tmp_bytes = dflt->tmp_bytes;
	if (!l->max_cells)
		l->max_cells = dflt->max_cells;
	if (!l->cpus_milli)
		l->cpus_milli = dflt->cpus_milli;
	if (!l->output_bytes)
		l->output_bytes = dflt->output_bytes;
	if (!l->file_size_bytes)
		l->file_size_bytes = dflt->file_size_bytes;
}

struct session *session_new(struct mgr *m)
{
	struct session *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	int slot = take_slot(m);
	if (slot < 0) {
		free(s);
		return NULL;
	}
	s->m = m;
	s->id = m->next_id++;
	s->slot = (uint32_t)slot;
	s->uid = m->cfg->uid_base + (uint32_t)slot;
	s->pidfd = s->ctl = s->chan = s->out_r = s->err_r = s->root_fd = s->output_fd = -1;
	s->limits = m->cfg->limits;
	sbx_cg_init(&s->cg);
	eng_reader_init(&s->rd, ENG_MAX_RUNNER_FRAME);
	cr_buf_init(&s->out, MGR_SESSION_OUT_MAX);
	s->created_ms = s->last_used_ms = mgr_now_ms();
	s->next = m->sessions;
	m->sessions = s;
	return s;
}

/* ---- claiming and starting --------------------------------------------------------------- */

static int send_start(struct session *s)
{
	json_t *env = json_object();
	for (size_t i = 0; SESSION_ENV[i]; i++) {
		const char *eq = strchr(SESSION_ENV[i], '=');
		char key[64];
		snprintf(key, sizeof key, "%.*s", (int)(eq - SESSION_ENV[i]), SESSION_ENV[i]);
		json_object_set_new(env, key, json_string(eq + 1));
	}
	for (const char *const *e = s->m->cfg->extra_env; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		if (!eq)
			continue;
		char key[128];
		snprintf(key, sizeof key, "%.*s", (int)(eq - *e), *e);
		json_object_set_new(env, key, json_string(eq + 1));
	}
	for (const char *e = s->env; *e; e += strlen(e) + 1) {
		const char *eq = strchr(e, '=');
		char key[256];
		snprintf(key, sizeof key, "%.*s", (int)(eq - e), e);
		json_object_set_new(env, key, json_string(eq + 1));
	}
	json_t *allow = json_null();
	if (s->allow_imports[0]) {
		allow = json_array();
		char buf[sizeof s->allow_imports];
		snprintf(buf, sizeof buf, "%s", s->allow_imports);
		char *save = NULL;
		for (char *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save))
			json_array_append_new(allow, json_string(t));
	}
	json_t *j = json_pack("{s:i, s:s, s:i, s:i, s:i, s:o, s:s, s:o}", "version", 1, "mode",
			      s->mode == ENG_STATELESS ? "stateless" : "stateful", "max_rows", 50,
			      "max_table_rows", 200, "max_bytes", 8 << 20, "allow_imports", allow,
			      "cwd", "/home/user", "env", env);
	if (!j)
		return -ENOMEM;
	s->started = true;
	return send_json(s, RUN_START, j);
}

/* A claimed session runs at normal priority (it was spawned and kept at the zygote's nice 10). */
static void session_foreground(struct session *s)
{
	pid_t pids[64];
	int n = sbx_cg_pids(&s->cg, pids, 64);
	if (n <= 0 && s->pid > 0) {
		pids[0] = s->pid;
		n = 1;
	}
	for (int i = 0; i < n; i++)
		setpriority(PRIO_PROCESS, (id_t)pids[i], 0);
}

static void reply_created(struct client *c, struct session *s, bool pooled)
{
	struct eng_rsp_created r = {.session = s->id, .mode = s->mode, .pooled = pooled};
	snprintf(r.python, sizeof r.python, "%s", s->m->python);
	client_send(c, ENG_RSP_CREATED, &r, sizeof r);
}

/* Spawned for a client that waits (the pool was empty): contained now, so start it and answer. */
void session_hand_to_waiter(struct session *s)
{
	struct client *c = s->waiter;
	s->waiter = NULL;
	c->op = OP_NONE;
	c->sess = NULL;
	s->state = S_IDLE;
	session_foreground(s);
	if (send_start(s) < 0) {
		client_error(c, ENOMEM, "cannot start the session");
		session_kill(s, "start failed");
	} else {
		reply_created(c, s, false);
	}
}

static void activate(struct session *s, struct client *c, const struct eng_req_create *req)
{
	s->mode = req->mode;
	s->flags = (req->flags & ENG_CREATE_EPHEMERAL) | SF_COUNTED;
	snprintf(s->name, sizeof s->name, "%s", req->name);
	snprintf(s->allow_imports, sizeof s->allow_imports, "%s", req->allow_imports);
	memcpy(s->env, req->env, sizeof s->env);
	if (req->flags & ENG_CREATE_EPHEMERAL)
		s->owner = c;
	s->created_ms = s->last_used_ms = mgr_now_ms();
	s->expires_ms = s->created_ms + (uint64_t)s->limits.lifetime_s * 1000;
	s->m->n_live++;
	s->m->stats.sessions_created++;
}

void session_create(struct client *c, const struct eng_req_create *req,
		    const struct eng_mount *mounts)
{
	struct mgr *m = c->m;
	if (m->stopping) {
		client_error(c, ESHUTDOWN, "the engine is shutting down");
		return;
	}
	if (req->name[0] && session_find_name(m, req->name)) {
		client_error(c, EEXIST, "a session named '%s' exists", req->name);
		return;
	}
	if (m->n_live >= m->cfg->max_sessions) {
		m->stats.refused_capacity++;
		client_error(c, EAGAIN, "at capacity: %u sessions", m->cfg->max_sessions);
		return;
	}
	struct eng_limits lim = req->limits;
	fill_limits(&lim, &m->cfg->limits);
	if (lim.memory_bytes < (16ULL << 20) || lim.pids < 8 || lim.tmp_bytes < (1ULL << 20) ||
	    lim.cpus_milli > 1024000 || lim.cell_timeout_ms > 24 * 3600 * 1000u) {
		client_error(c, EINVAL, "limits out of range (memory >= 16M, pids >= 8, tmp >= 1M)");
		return;
	}

	/* Warm path: a contained session from the pool, when nothing host-specific is asked.  The
	 * oldest pooled session is taken: it has had the most time to settle. */
	if (!req->n_mounts && !req->want_output && lim.tmp_bytes == m->cfg->limits.tmp_bytes &&
	    lim.file_size_bytes == m->cfg->limits.file_size_bytes) {
		struct session *s = NULL;
		for (struct session *p = m->sessions; p; p = p->next)
			if (p->state == S_POOLED)
				s = p; /* sessions are prepended: the last one found is the oldest */
		if (s) {
			struct cr_err err = {0};
			struct sbx_limits sl = to_sbx(&lim);
			bool same_cg = lim.memory_bytes == s->limits.memory_bytes &&
				       lim.pids == s->limits.pids && lim.cpus_milli == s->limits.cpus_milli;
			if (s->cg.created && !same_cg && sbx_cg_update(&m->cg_host, &s->cg, &sl, &err) < 0) {
				session_kill(s, "cgroup update failed");
			} else {
				s->limits = lim;
				m->n_pool--;
				activate(s, c, req);
				s->state = S_IDLE;
				session_foreground(s); /* before START: the runner reads it at once */
				if (send_start(s) < 0) {
					client_error(c, ENOMEM, "cannot start the session");
					session_kill(s, "start failed");
					return;
				}
				/* The replacement is spawned once this session's first cell is done (or soon
				 * after), not while the client waits for that cell. */
				pool_hold(m);
				reply_created(c, s, true);
				return;
			}
		}
	}

	/* Cold path: spawn one for this client (mounts, /output, or the pool is empty). */
	if (!m->zyg_ready) {
		/* the engine is still warming up: park the request until the zygote is ready */
		size_t mb = req->n_mounts * sizeof *mounts;
		c->pending = malloc(sizeof *req);
		c->pending_mounts = mb ? malloc(mb) : NULL;
		if (!c->pending || (mb && !c->pending_mounts)) {
			free(c->pending);
			free(c->pending_mounts);
			c->pending = NULL;
			c->pending_mounts = NULL;
			client_error(c, ENOMEM, "cannot queue the request");
			return;
		}
		memcpy(c->pending, req, sizeof *req);
		if (mb)
			memcpy(c->pending_mounts, mounts, mb);
		c->op = OP_CREATE;
		return;
	}
	struct session *s = session_new(m);
	if (!s) {
		client_error(c, ENOMEM, "no session slot");
		return;
	}
	s->limits = lim;
	s->want_output = req->want_output != 0;
	struct cr_err err = {0};
	if (session_spawn(s, mounts, req->n_mounts, &err) < 0) {
		s->state = S_DEAD;
		client_error(c, err.code ? err.code : EINVAL, "%s", err.msg);
		return;
	}
	activate(s, c, req);
	s->waiter = c;
	c->op = OP_CREATE;
	c->sess = s;
}

/* ---- death ------------------------------------------------------------------------------- */

void session_fail(struct session *s, const char *why)
{
	struct mgr *m = s->m;
	enum sess_state was = s->state;
	if (was == S_DEAD)
		return;
	if (!s->error[0])
		snprintf(s->error, sizeof s->error, "%s", why);
	stage_release(s);
	if (was == S_SPAWNING && !s->contained)
		m->n_spawning--;
	if (s->waiter) {
		client_error(s->waiter, EIO, "%s", s->error);
		s->waiter->op = OP_NONE;
		s->waiter->sess = NULL;
		s->waiter = NULL;
	}
	if (was == S_BUSY)
		finish_cell(s, s->cell_phase == 2 ? ENG_F_TIMEOUT : ENG_F_KILLED, false);
	if (was == S_POOLED)
		m->n_pool--;
	if (s->flags & SF_COUNTED) {
		m->n_live--;
		m->stats.sessions_destroyed++;
	}
	if ((s->flags & SF_POOL) && was == S_SPAWNING)
		cr_log(CR_LOG_WARN, "engine: a warm session failed: %s", s->error);
	s->state = S_DEAD;
	/* Nothing a dead session says is read any more; only its init's pidfd stays watched.
	 * (Left registered, the channel's hangup is level-triggered: the loop would spin on it
	 * until init has been reaped -- a core's worth of CPU while every session is torn down.) */
	int quiet[] = {s->ctl, s->chan, s->out_r, s->err_r};
	for (size_t i = 0; i < sizeof quiet / sizeof *quiet; i++)
		mgr_unwatch(m, quiet[i]);
	s->ep_chan = 0;
	/* Killing init takes the whole pid namespace with it; the cgroup is removed once init has
	 * been reaped (session_reap_dead).  Nothing here may block the event loop. */
	if (s->pidfd >= 0)
		syscall(SYS_pidfd_send_signal, s->pidfd, SIGKILL, NULL, 0);
}

void session_kill(struct session *s, const char *why)
{
	session_fail(s, why);
}

void session_create_pending(struct mgr *m)
{
	if (!m->zyg_ready)
		return;
	for (struct client *c = m->clients; c; c = c->next) {
		if (!c->pending || c->dead)
			continue;
		struct eng_req_create *req = c->pending;
		struct eng_mount *mounts = c->pending_mounts;
		c->pending = NULL;
		c->pending_mounts = NULL;
		c->op = OP_NONE;
		session_create(c, req, mounts);
		free(req);
		free(mounts);
	}
}

void session_client_gone(struct client *c)
{
	free(c->pending);
	free(c->pending_mounts);
	c->pending = NULL;
	c->pending_mounts = NULL;
	struct mgr *m = c->m;
	for (struct session *s = m->sessions; s; s = s->next) {
		if (s->cell_client == c) {
			/* nobody listens: stop the cell -- now, and again every MGR_REINTERRUPT_MS
			 * until it ends (session_on_timer): a cell may catch KeyboardInterrupt and go
			 * on, and nobody is left to see it */
			s->cell_client = NULL;
			session_interrupt(s);
		}
		if (s->waiter == c) {
			s->waiter = NULL;
			session_kill(s, "its client went away while it started");
		}
		if (s->owner == c && s->state != S_DEAD)
			session_kill(s, "its ephemeral client went away");
	}
}

void session_reap_dead(struct mgr *m)
{
	struct session **pp = &m->sessions;
	while (*pp) {
		struct session *s = *pp;
		/* keep it until its init has been reaped (no zombie, cgroup empty) */
		if (s->state != S_DEAD || s->pidfd >= 0) {
			if (s->state == S_DEAD && s->pidfd >= 0) {
				siginfo_t si;
				memset(&si, 0, sizeof si);
				if (waitid(P_PIDFD, (id_t)s->pidfd, &si, WEXITED | WNOHANG) == 0 &&
				    si.si_pid != 0) {
					mgr_unwatch(m, s->pidfd);
					close(s->pidfd);
					s->pidfd = -1;
					continue; /* look at it again */
				}
			}
			pp = &s->next;
			continue;
		}
		*pp = s->next;
		int fds[] = {s->ctl, s->chan, s->out_r, s->err_r, s->root_fd, s->output_fd};
		for (size_t i = 0; i < sizeof fds / sizeof *fds; i++) {
			mgr_unwatch(m, fds[i]);
			if (fds[i] >= 0)
				close(fds[i]);
		}
		sbx_cg_destroy(&s->cg);
		give_slot(m, s->slot);
		eng_reader_free(&s->rd);
		cr_buf_free(&s->out);
		free(s);
	}
}
