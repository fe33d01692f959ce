/* engine/cell.c -- running cells: the EXEC frame out, the runner's frames back to the cell's
 * client (forwarded, not parsed -- except the fixed-layout DONE), fd-level output from the
 * pipes, the per-cell deadline (SIGINT, then the whole session after a grace period), and the
 * final verdict from our timers and the cgroup's counters. */
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

void chan_arm(struct session *s)
{
	uint32_t want = (s->out.len > s->out_off ? EPOLLOUT : 0);
	if (!(s->cell_client && client_backlogged(s->cell_client)))
		want |= EPOLLIN;
	if (want != s->ep_chan) {
		s->ep_chan = want;
		mgr_watch(s->m, s->chan, TAG_S_CHAN, s, want);
	}
}

void chan_flush(struct session *s)
{
	while (s->out.len > s->out_off) {
		ssize_t n = write(s->chan, s->out.data + s->out_off, s->out.len - s->out_off);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			session_kill(s, "the runner's channel broke");
			return;
		}
		s->out_off += (size_t)n;
	}
	if (s->out_off == s->out.len) {
		cr_buf_reset(&s->out);
		s->out_off = 0;
	}
	chan_arm(s);
}

int send_json(struct session *s, uint32_t type, json_t *j)
{
	char *txt = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!txt)
		return -ENOMEM;
	int r = eng_frame_put(&s->out, type, txt, strlen(txt));
	free(txt);
	if (r == 0)
		chan_flush(s);
	return r;
}


/* ---- cells ------------------------------------------------------------------------------- */

static struct sbx_cg_stats cg_counters(struct session *s)
{
	struct sbx_cg_stats st;
	memset(&st, 0, sizeof st);
	if (s->cg.created)
		sbx_cg_stats(&s->cg, &st);
	return st;
}

/* Forwards cell output to the client within the session's per-cell cap; counts the rest. */
static void forward_output(struct session *s, uint32_t ev, const char *p, size_t len)
{
	struct client *c = s->cell_client && !s->cell_client->dead ? s->cell_client : NULL;
	uint64_t room = s->limits.output_bytes > s->cell_output ? s->limits.output_bytes - s->cell_output : 0;
	size_t keep = len < room ? len : (size_t)room;
	if (keep && c)
		client_send(c, ev, p, keep);
	s->cell_output += keep;
	if (keep < len || !c) {
		s->fin.dropped_bytes += len - (c ? keep : 0);
		if (keep < len)
			s->fin.limits_hit |= ENG_HIT_OUTPUT;
	}
	if (ev == ENG_EV_STDOUT)
		s->fin.stdout_bytes += len;
	else
		s->fin.stderr_bytes += len;
}

static void begin_cell(struct client *c, struct session *s, uint32_t timeout_ms, bool ctx)
{
	s->state = S_BUSY;
	s->cell_client = c;
	s->cell_is_ctx = ctx;
	c->op = OP_EXEC;
	c->sess = s;
	memset(&s->fin, 0, sizeof s->fin);
	s->fin.exit_code = -1;
	s->cell_phase = 0;
	s->cell_sigint_us = 0;
	s->cell_t0_us = mgr_now_us();
	uint32_t t = timeout_ms ? timeout_ms : s->limits.cell_timeout_ms;
	s->cell_deadline_us = s->cell_t0_us + (uint64_t)t * 1000;
	s->keepalive_us = s->cell_t0_us + MGR_KEEPALIVE_MS * 1000ULL;
	struct sbx_cg_stats st = cg_counters(s);
	s->cell_cpu0 = st.cpu_usec;
	s->cell_oom0 = st.oom_kills;
	s->cell_pids0 = st.pids_max_hits;
	s->cell_memhits0 = st.memory_max_hits;
	s->cell_output = 0;
	s->last_used_ms = mgr_now_ms();
}

/* A command's payload (wire.h, ENG_EXEC_COMMAND) -> the runner's CMD object.  The strings are
 * checked here, bounded, before anything is built: the payload comes from a client. */
static json_t *command_json(const char *p, size_t len, struct cr_err *err)
{
	struct eng_cmd_hdr h;
	if (len < sizeof h) {
		cr_failx(err, EINVAL, "command without a header");
		return NULL;
	}
	memcpy(&h, p, sizeof h);
	p += sizeof h;
	len -= sizeof h;
	if (h.argc < 1 || h.argc > ENG_CMD_ARGS_MAX || h.envc > ENG_CMD_ENV_MAX) {
		cr_failx(err, EINVAL, "a command takes 1..%u arguments and at most %u variables",
			 ENG_CMD_ARGS_MAX, ENG_CMD_ENV_MAX);
		return NULL;
	}
	json_t *argv = json_array(), *env = json_object();
	const char *cwd = NULL;
	size_t want = 1 + (size_t)h.argc + h.envc;
	for (size_t i = 0; i < want; i++) {
		const char *end = len ? memchr(p, '\0', len) : NULL;
		if (!end) {
			cr_failx(err, EINVAL, "command strings are cut short");
			goto fail;
		}
		size_t n = (size_t)(end - p);
		if (!cr_utf8_valid(p, n)) {
			cr_failx(err, EILSEQ, "command strings must be UTF-8");
			goto fail;
		}
		if (i == 0) {
			cwd = p;
		} else if (i <= h.argc) {
			json_array_append_new(argv, json_stringn(p, n));
		} else {
			const char *eq = memchr(p, '=', n);
			if (!eq || eq == p) {
				cr_failx(err, EINVAL, "command variables are NAME=value");
				goto fail;
			}
			json_object_setn_new(env, p, (size_t)(eq - p),
					     json_stringn(eq + 1, n - (size_t)(eq - p) - 1));
		}
		p = end + 1;
		len -= n + 1;
	}
	if (len) {
		cr_failx(err, EINVAL, "trailing bytes after the command");
		goto fail;
	}
	json_t *j = json_pack("{s:o, s:o}", "argv", argv, "env", env);
	if (j && cwd && *cwd)
		json_object_set_new(j, "cwd", json_string(cwd));
	if (!j)
		cr_failx(err, ENOMEM, "command");
	return j;
fail:
	json_decref(argv);
	json_decref(env);
	return NULL;
}

void session_execute(struct client *c, struct session *s, const struct eng_req_execute *req,
		     const char *code, size_t code_len)
{
	if (s->state == S_BUSY) {
		client_error(c, EBUSY, "session %llu is running a cell", (unsigned long long)s->id);
		return;
	}
	if (code_len > ENG_MAX_CODE) {
		client_error(c, E2BIG, "cell of %zu bytes exceeds the %u byte limit", code_len,
			     ENG_MAX_CODE);
		return;
	}
	json_t *cmd = NULL;
	if (req->flags & ENG_EXEC_COMMAND) {
		struct cr_err err = {0};
		if (!(cmd = command_json(code, code_len, &err))) {
			client_error(c, err.code ? err.code : EINVAL, "%s", err.msg);
			return;
		}
	} else if (!cr_utf8_valid(code, code_len)) {
		client_error(c, EILSEQ, "cell code is not valid UTF-8");
		return;
	}
	if (s->limits.max_cells && s->cells >= s->limits.max_cells) {
		json_decref(cmd);
		client_error(c, EDQUOT, "session %llu has run its maximum of %u cells",
			     (unsigned long long)s->id, s->limits.max_cells);
		return;
	}
	if (req->timeout_ms > 24 * 3600 * 1000u) {
		json_decref(cmd);
		client_error(c, EINVAL, "timeout out of range");
		return;
	}
	s->cells++;
	json_t *j = cmd;
	if (j)
		json_object_set_new(j, "cell", json_integer((json_int_t)s->cells));
	else
		j = json_pack("{s:s%, s:s, s:b, s:I}", "code", code, code_len, "context",
			      req->context[0] ? req->context : "default", "svg",
			      (req->flags & ENG_EXEC_SVG) != 0, "cell", (json_int_t)s->cells);
	if (!j || send_json(s, cmd ? RUN_CMD : RUN_EXEC, j) < 0) {
		client_error(c, ENOMEM, "cannot send the cell");
		return;
	}
	begin_cell(c, s, req->timeout_ms, false);
	s->fin.cell = s->cells;
	if (req->flags & ENG_EXEC_ACK)
		client_send(c, ENG_EV_ACCEPTED, NULL, 0); /* ahead of anything the cell sends */
}

void session_context(struct client *c, struct session *s, const char *name, bool create)
{
	if (s->state == S_BUSY) {
		client_error(c, EBUSY, "session %llu is running a cell", (unsigned long long)s->id);
		return;
	}
	json_t *j = json_pack("{s:s}", "context", name);
	if (!j || send_json(s, create ? RUN_CTX_CREATE : RUN_CTX_DELETE, j) < 0) {
		client_error(c, ENOMEM, "cannot send the request");
		return;
	}
	begin_cell(c, s, 10000, true);
}

void session_signal(struct session *s, int sig)
{
	struct sbx_msg m;
	memset(&m, 0, sizeof m);
	m.type = SBX_MSG_SIGNAL;
	m.errnum = sig;
	(void)!send(s->ctl, &m, sizeof m, MSG_NOSIGNAL | MSG_DONTWAIT);
}

void session_resume(struct session *s)
{
	if (s->state == S_BUSY)
		chan_arm(s);
}

void session_interrupt(struct session *s)
{
	if (s->state == S_BUSY && s->cell_phase == 0) {
		session_signal(s, RUN_INTERRUPT_SIG(s->cells));
		s->cell_sigint_us = mgr_now_us();
	}
}

/* Forwards what fd-level output is waiting in the pipes (before a cell's final event). */
void drain_pipe(struct session *s, int fd, uint32_t ev)
{
	char buf[65536];
	for (int i = 0; i < 64; i++) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n <= 0)
			return;
		if (s->state == S_BUSY)
			forward_output(s, ev, buf, (size_t)n);
		else
			s->fin.dropped_bytes += (uint64_t)n; /* between cells: nobody to tell */
	}
}

void finish_cell(struct session *s, uint32_t status, bool alive)
{
	struct mgr *m = s->m;
	if (s->state != S_BUSY)
		return;
	drain_pipe(s, s->out_r, ENG_EV_STDOUT);
	drain_pipe(s, s->err_r, ENG_EV_STDERR);
	struct sbx_cg_stats st = cg_counters(s);
	uint64_t cpu = st.cpu_usec, peak = st.peak_memory_bytes;
	if (st.oom_kills > s->cell_oom0) {
		s->fin.limits_hit |= ENG_HIT_MEMORY;
		if (status != ENG_F_OK)
			status = ENG_F_MEMORY_LIMIT;
	}
	if (st.pids_max_hits > s->cell_pids0)
		s->fin.limits_hit |= ENG_HIT_PIDS;
	struct eng_final *f = &s->fin;
	f->status = status;
	f->session_alive = alive;
	f->duration_us = mgr_now_us() - s->cell_t0_us;
	f->cpu_us = cpu >= s->cell_cpu0 ? cpu - s->cell_cpu0 : 0;
	f->peak_memory_bytes = peak;
	if (!s->cell_is_ctx) {
		uint64_t *counter[] = {&m->stats.exec_ok, &m->stats.exec_error, &m->stats.exec_timeout,
				       &m->stats.exec_memory_limit, &m->stats.exec_killed};
		(*counter[status <= ENG_F_KILLED ? status : ENG_F_KILLED])++;
		double ms = (double)f->duration_us / 1000;
		for (int i = 0; i < 12; i++)
			if (ms <= eng_latency_le_ms[i])
				m->stats.latency_buckets[i]++;
		m->stats.latency_count++;
		m->stats.latency_sum_us += f->duration_us;
	}
	struct client *c = s->cell_client;
	s->cell_client = NULL;
	if (s->cells == 1 && !s->cell_is_ctx)
		pool_release(m); /* a claimed session's first cell is answered: refill the pool now */
	if (c && !c->dead) {
		client_send(c, ENG_EV_FINAL, f, sizeof *f);
		c->op = OP_NONE;
		c->sess = NULL;
	}
	if (s->state == S_BUSY && alive)
		s->state = S_IDLE; /* !alive: the caller (session_fail) buries it */
	s->last_used_ms = mgr_now_ms();
	if (alive)
		chan_arm(s);
}

void on_runner_frame(struct session *s, uint32_t type, const char *p, size_t len)
{
	struct client *c = s->cell_client && !s->cell_client->dead ? s->cell_client : NULL;
	switch (type) {
	case RUN_HELLO:
	case RUN_PONG:
		return;
	case RUN_STDOUT:
	case RUN_STDERR:
		if (s->state == S_BUSY)
			forward_output(s, type == RUN_STDOUT ? ENG_EV_STDOUT : ENG_EV_STDERR, p, len);
		return;
	case RUN_EVENT:
		if (c)
			client_send(c, ENG_EV_JSON, p, len);
		return;
	case RUN_DONE: {
		if (len != sizeof(struct run_done) || s->state != S_BUSY) {
			session_kill(s, "protocol error: unexpected DONE");
			return;
		}
		struct run_done d;
		memcpy(&d, p, sizeof d);
		uint32_t status = ENG_F_OK;
		if (d.status == 0) { /* a command that ran to its end says how: -1/0 for cells */
			s->fin.exit_code = d.exit_code;
			s->fin.signal = d.signal;
		}
		if (s->cell_phase >= 1)
			status = ENG_F_TIMEOUT; /* interrupted by our deadline */
		else if (d.status == 1)
			status = ENG_F_ERROR;
		else if (d.status == 2) {
			status = ENG_F_KILLED;
			s->fin.exit_code = d.exit_code;
			s->fin.signal = d.signal;
		} else if (d.status != 0) {
			session_kill(s, "protocol error: bad DONE status");
			return;
		}
		finish_cell(s, status, true);
		return;
	}
	default:
		session_kill(s, "protocol error: unknown frame from the runner");
	}
}

