/* engine/session_events.c -- a session's events: its init's control messages (READY, setup
 * errors, the payload's status), the exit of its init, readiness of its channel and pipes,
 * and its timers (cell timeout, idle timeout, lifetime).  The per-cell verdict is decided in
 * cell.c from what is seen here; a session's start and death are in session.c. */
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
#include "core/fdpass.h"
#include "core/log.h"
#include "core/text.h"
#include "engine/manager_internal.h"
#include "engine/zygote_proto.h"
#include "sandbox/contain.h"

/* ---- events ------------------------------------------------------------------------------- */

static void on_ctl(struct session *s)
{
	for (;;) {
		struct sbx_msg msg;
		memset(&msg, 0, sizeof msg);
		int fd;
		ssize_t n = cr_recv_with_fd(s->ctl, &msg, sizeof msg, &fd);
		if (n == 0 || (n < 0 && n != -EAGAIN && n != -EINTR)) {
			mgr_unwatch(s->m, s->ctl); /* init is gone: its pidfd tells the rest */
			return;
		}
		if (n < 0)
			return;
		if (n == (ssize_t)ZYG_WARM_LEN && !memcmp(&msg, ZYG_WARM, ZYG_WARM_LEN)) {
			/* the session's runner has warmed up and waits for START (it has closed its
			 * copy of this socket: nothing else in the session can send this) */
			if (fd >= 0)
				close(fd);
			if (!s->warm) {
				s->warm = true;
				pool_admit(s);
			}
			continue;
		}
		if (n != (ssize_t)sizeof msg) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		switch (msg.type) {
		case SBX_MSG_ROOT_FD:
			if (s->root_fd < 0 && fd >= 0) {
				s->root_fd = fd;
				fd = -1;
			}
			break;
		case SBX_MSG_OUTPUT_FD:
			if (s->output_fd < 0 && fd >= 0) {
				s->output_fd = fd;
				fd = -1;
			}
			break;
		case SBX_MSG_SETUP_ERROR: {
			char why[256];
			msg.step[sizeof msg.step - 1] = msg.detail[sizeof msg.detail - 1] = '\0';
			snprintf(why, sizeof why, "sandbox setup failed at %s %s: %s", msg.step,
				 msg.detail, strerror(msg.errnum));
			session_fail(s, why);
			break;
		}
		case SBX_MSG_READY:
			if (!s->contained && s->state == S_SPAWNING) {
				s->contained = true;
				stage_release(s); /* mounted: the copies need no name any more */
				s->m->n_spawning--;
				if (s->waiter)
					session_hand_to_waiter(s);
				else if (s->flags & SF_POOL) {
					pool_admit(s); /* once its runner is warm too */
				} else {
					session_kill(s, "nobody waits for it");
				}
			}
			break;
		default:
			break; /* STATUS: the payload ended; init exits right after */
		}
		if (fd >= 0)
			close(fd);
	}
}

static void on_exit_of_init(struct session *s)
{
	siginfo_t si;
	memset(&si, 0, sizeof si);
	if (waitid(P_PIDFD, (id_t)s->pidfd, &si, WEXITED | WNOHANG) < 0 || si.si_pid == 0)
		return;
	mgr_unwatch(s->m, s->pidfd);
	close(s->pidfd);
	s->pidfd = -1;
	s->pid = 0;
	/* What init said before it went may still wait in its socket -- a setup step's error
	 * says more than "ended" -- when both came in one batch of events, the exit first. */
	if (s->state != S_DEAD && s->ctl >= 0)
		on_ctl(s);
	/* The session's process tree is gone; session_fail settles a running cell's verdict. */
	if (s->state != S_DEAD)
		session_fail(s, s->error[0] ? s->error : "the session's processes ended");
}

void session_on_event(struct session *s, enum mgr_tag tag, uint32_t events)
{
	switch (tag) {
	case TAG_S_PID:
		on_exit_of_init(s);
		break;
	case TAG_S_CTL:
		on_ctl(s);
		break;
	case TAG_S_OUT:
	case TAG_S_ERR:
		drain_pipe(s, tag == TAG_S_OUT ? s->out_r : s->err_r,
			   tag == TAG_S_OUT ? ENG_EV_STDOUT : ENG_EV_STDERR);
		if (events & (EPOLLHUP | EPOLLERR))
			mgr_unwatch(s->m, tag == TAG_S_OUT ? s->out_r : s->err_r);
		break;
	case TAG_S_CHAN:
		if (events & EPOLLOUT)
			chan_flush(s);
		if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
			for (int budget = 64; budget > 0 && s->state != S_DEAD; budget--) {
				if (s->cell_client && client_backlogged(s->cell_client))
					break; /* resume when the client has drained */
				int r = eng_reader_feed(&s->rd, s->chan);
				if (r == 0)
					break;
				if (r < 0) {
					if (r == -E2BIG)
						session_kill(s, "protocol error: oversized frame");
					else
						mgr_unwatch(s->m, s->chan); /* EOF: init's exit decides */
					break;
				}
				on_runner_frame(s, s->rd.hdr.type, s->rd.payload.data ? s->rd.payload.data : "",
						s->rd.payload.len);
				eng_reader_next(&s->rd);
				if (s->rd.payload.cap > (1u << 20))
					cr_buf_free(&s->rd.payload);
			}
			if (s->state != S_DEAD)
				chan_arm(s);
		}
		break;
	default:
		break;
	}
}

void session_on_timer(struct session *s, uint64_t now_ms)
{
	uint64_t now_us = now_ms * 1000;
	if (s->state == S_BUSY) {
		chan_arm(s); /* resumes reading once a backlogged client has drained */
		if (session_abandoned(s) && s->cell_phase == 0 &&
		    now_us >= s->cell_sigint_us + MGR_REINTERRUPT_MS * 1000ULL)
			session_interrupt(s);
		if (now_us >= s->cell_deadline_us) {
			if (s->cell_phase == 0) {
				/* KeyboardInterrupt in the cell -- unless one went out just now (its
				 * client hung up at its deadline): that one is this one, not a second.
				 * (Only just now: an earlier one may have come before the cell began.) */
				if (!s->cell_sigint_us ||
				    now_us >= s->cell_sigint_us + MGR_SIGINT_MERGE_MS * 1000ULL)
					session_signal(s, RUN_INTERRUPT_SIG(s->cells));
				s->cell_phase = 1;
				s->cell_deadline_us = now_us + MGR_GRACE_MS * 1000ULL;
			} else if (s->cell_phase == 1) {
				s->cell_phase = 2; /* it ignored the interrupt: the session dies */
				snprintf(s->error, sizeof s->error, "killed: the cell ignored its interrupt");
				session_kill(s, s->error);
			}
		}
		if (s->cell_client && now_us >= s->keepalive_us) {
			client_send(s->cell_client, ENG_EV_KEEPALIVE, NULL, 0);
			s->keepalive_us = now_us + MGR_KEEPALIVE_MS * 1000ULL;
		}
	} else if (s->state == S_IDLE) {
		if (now_ms >= s->expires_ms) {
			s->m->stats.sessions_expired++;
			session_kill(s, "lifetime reached");
		} else if (now_ms - s->last_used_ms >= (uint64_t)s->limits.idle_timeout_s * 1000) {
			s->m->stats.sessions_expired++;
			session_kill(s, "idle timeout");
		}
	} else if (s->state == S_SPAWNING && now_ms >= s->spawn_deadline_ms) {
		session_fail(s, "the session did not start in time");
	}
}

uint64_t session_next_deadline_ms(const struct mgr *m)
{
	uint64_t next = UINT64_MAX;
	for (const struct session *s = m->sessions; s; s = s->next) {
		uint64_t d = UINT64_MAX;
		if (s->state == S_BUSY) {
			d = s->cell_deadline_us / 1000;
			if (s->keepalive_us / 1000 < d)
				d = s->keepalive_us / 1000;
			uint64_t again = (s->cell_sigint_us / 1000) + MGR_REINTERRUPT_MS;
			if (session_abandoned(s) && s->cell_phase == 0 && again < d)
				d = again;
		}
		if (d < next)
			next = d;
	}
	return next;
}

void session_fill_info(struct session *s, struct eng_session_info *out)
{
	memset(out, 0, sizeof *out);
	out->session = s->id;
	out->state = s->state == S_BUSY ? ENG_S_BUSY : s->state == S_DEAD ? ENG_S_DEAD : ENG_S_IDLE;
	out->mode = s->mode;
	/* wall-clock times for clients: convert from our monotonic ms */
	struct timespec rt;
	clock_gettime(CLOCK_REALTIME, &rt);
	uint64_t real_ms = (uint64_t)rt.tv_sec * 1000 + (uint64_t)rt.tv_nsec / 1000000;
	uint64_t mono_ms = mgr_now_ms();
	out->created_unix_ms = real_ms - (mono_ms - s->created_ms);
	out->last_used_unix_ms = real_ms - (mono_ms - s->last_used_ms);
	out->expires_unix_ms = real_ms + (s->expires_ms > mono_ms ? s->expires_ms - mono_ms : 0);
	out->cells = s->cells;
	struct sbx_cg_stats st;
	memset(&st, 0, sizeof st);
	if (s->cg.created)
		sbx_cg_stats(&s->cg, &st);
	out->cpu_us = st.cpu_usec;
	out->peak_memory_bytes = st.peak_memory_bytes;
	out->limits = s->limits;
	snprintf(out->name, sizeof out->name, "%s", s->name);
}
