/* sandbox/watch.c -- the supervisor while the sandbox runs: the event loop, then the verdict.
 *
 * sbx_watch_loop multiplexes the stdout/stderr pipes (always drained, so the child never
 * blocks; bytes past the cap are counted and dropped), the control socket (setup errors, the
 * /output fd, READY, the payload's status), init's pidfd, an optional cancel fd and the
 * wall-clock deadline; killing init kills the whole pid namespace, and the cgroup is killed
 * too.  sbx_decide turns what was seen, and the cgroup's counters, into exactly one status:
 * a setup failure is always sandbox_error, never a failure of the user's code.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/fdpass.h"
#include "sandbox/supervise.h"

static void drain_pipe(int *fd, bool *eof, struct cr_buf *b, bool passthrough, int dest)
{
	char chunk[65536];
	for (;;) {
		ssize_t n = read(*fd, chunk, sizeof chunk);
		if (n > 0) {
			size_t kept = cr_buf_append_trunc(b, chunk, (size_t)n);
			if (passthrough && kept)
				(void)!write(dest, chunk, kept);
			continue;
		}
		if (n == 0) {
			*eof = true;
			close(*fd);
			*fd = -1;
		}
		return; /* EAGAIN or error: come back on the next poll */
	}
}

static void drain_ctl(struct sbx_watch *w)
{
	for (;;) {
		struct sbx_msg m;
		memset(&m, 0, sizeof m);
		int fd;
		ssize_t n = cr_recv_with_fd(w->ctl, &m, sizeof m, &fd);
		if (fd >= 0 && w->output_fd < 0 && n == (ssize_t)sizeof m &&
		    m.type == SBX_MSG_OUTPUT_FD)
			w->output_fd = fd;
		else if (fd >= 0)
			close(fd);
		if (n == 0) {
			w->ctl_eof = true;
			return;
		}
		if (n < 0)
			return;
		if (n != (ssize_t)sizeof m)
			continue;
		if (m.type == SBX_MSG_SETUP_ERROR && !w->setup_failed) {
			w->setup_failed = true;
			w->setup_error = m;
		} else if (m.type == SBX_MSG_READY) {
			sbx_phase("contained, program started");
			w->started = true;
		} else if (m.type == SBX_MSG_STATUS) {
			sbx_phase("payload exited");
			w->have_status = true;
			w->wstatus = m.wstatus;
		}
	}
}


static void kill_all(pid_t pid, struct sbx_cg *cg)
{
	kill(pid, SIGKILL); /* PID 1 of the namespace: the kernel kills the rest */
	if (cg->created)
		sbx_cg_kill(cg);
}

void sbx_watch_loop(struct sbx_watch *w, const struct sbx_config *cfg, pid_t pid,
		       struct sbx_cg *cg, struct sbx_result *res, uint64_t t0)
{
	const uint64_t timeout = cfg->limits.timeout_ms;
	uint64_t exit_seen = 0;
	while (!(w->exited && w->out_eof && w->err_eof)) {
		struct pollfd pfd[5];
		int n = 0, i_out = -1, i_err = -1, i_ctl = -1, i_pid = -1, i_cancel = -1;
		if (w->out_r >= 0)
			pfd[i_out = n++] = (struct pollfd){.fd = w->out_r, .events = POLLIN};
		if (w->err_r >= 0)
			pfd[i_err = n++] = (struct pollfd){.fd = w->err_r, .events = POLLIN};
		if (!w->ctl_eof)
			pfd[i_ctl = n++] = (struct pollfd){.fd = w->ctl, .events = POLLIN};
		if (!w->exited)
			pfd[i_pid = n++] = (struct pollfd){.fd = w->pidfd, .events = POLLIN};
		if (w->cancel_fd >= 0 && !w->cancelled)
			pfd[i_cancel = n++] = (struct pollfd){.fd = w->cancel_fd, .events = POLLIN};

		uint64_t now = sbx_now_ms();
		int wait_ms = -1;
		if (!w->exited && timeout && !w->timed_out)
			wait_ms = now - t0 >= timeout ? 0 : (int)(timeout - (now - t0));
		if (w->exited) {
			/* Everything inside is dead once init is; pipes close at once.  Guard anyway. */
			if (!exit_seen)
				exit_seen = now;
			if (now - exit_seen > 2000)
				break;
			wait_ms = 100;
		}
		int r = poll(pfd, (nfds_t)n, wait_ms);
		if (r < 0 && errno != EINTR)
			break;
		if (i_out >= 0 && pfd[i_out].revents)
			drain_pipe(&w->out_r, &w->out_eof, &res->out, cfg->passthrough, 1);
		if (i_err >= 0 && pfd[i_err].revents)
			drain_pipe(&w->err_r, &w->err_eof, &res->err, cfg->passthrough, 2);
		if (i_ctl >= 0 && pfd[i_ctl].revents)
			drain_ctl(w);
		if (i_cancel >= 0 && pfd[i_cancel].revents) {
			w->cancelled = true;
			kill_all(pid, cg);
		}
		if (i_pid >= 0 && pfd[i_pid].revents)
			w->exited = true;
		if (!w->exited && timeout && !w->timed_out && sbx_now_ms() - t0 >= timeout) {
			w->timed_out = true;
			kill_all(pid, cg);
		}
		if (w->started && w->sweep_pending && *w->sweep_pending) {
			/* The program has exec'd and runs; we would only wait.  (Run before the
			 * sandbox was built, the sweep was 0.2-0.5 ms of every start.) */
			*w->sweep_pending = false;
			sbx_sweep_stale();
			sbx_phase("stale cgroups swept");
		}
	}
	drain_ctl(w);
}

void sbx_decide(struct sbx_result *res, const struct sbx_watch *w, const struct sbx_cg_stats *st,
		   const struct sbx_limits *lim, int init_status)
{
	res->stdout_truncated = res->out.dropped > 0;
	res->stderr_truncated = res->err.dropped > 0;
	if (w->have_status) {
		if (WIFEXITED(w->wstatus))
			res->exit_code = WEXITSTATUS(w->wstatus);
		else if (WIFSIGNALED(w->wstatus))
			res->signal = WTERMSIG(w->wstatus);
	}
	if (w->setup_failed) {
		res->status = SBX_SANDBOX_ERROR;
		snprintf(res->error_step, sizeof res->error_step, "%s", w->setup_error.step);
		res->error_errno = w->setup_error.errnum;
		snprintf(res->error_msg, sizeof res->error_msg, "%s %s: %s", w->setup_error.step,
			 w->setup_error.detail, strerror(w->setup_error.errnum));
		res->exit_code = -1;
		res->signal = 0;
		return;
	}
	if (w->cancelled) {
		res->status = SBX_SIGNALED;
		res->signal = SIGKILL;
		res->limit = "cancelled";
		return;
	}
	if (st->oom_kills > 0) {
		res->status = SBX_MEMORY_LIMIT;
		res->limit = "memory";
		return;
	}
	if (st->pids_max_hits > 0) {
		res->status = SBX_PIDS_LIMIT;
		res->limit = "pids";
		return;
	}
	if (w->timed_out) {
		res->status = SBX_TIMEOUT;
		res->limit = "wall_time";
		return;
	}
	if (!w->have_status) {
		/* init died without reporting: only the host (or the OOM killer) can do that. */
		res->status = SBX_SANDBOX_ERROR;
		snprintf(res->error_step, sizeof res->error_step, "supervise");
		res->error_errno = ECHILD;
		snprintf(res->error_msg, sizeof res->error_msg,
			 "sandbox init ended without a status (wait status %#x)", init_status);
		return;
	}
	if (lim->cpu_time_ms && res->signal == SIGXCPU) {
		res->status = SBX_TIMEOUT;
		res->limit = "cpu_time";
		return;
	}
	if (res->stdout_truncated || res->stderr_truncated) {
		res->status = SBX_OUTPUT_LIMIT;
		res->limit = "output";
		return;
	}
	if (res->signal)
		res->status = SBX_SIGNALED;
	else if (res->exit_code != 0)
		res->status = SBX_NONZERO_EXIT;
	else
		res->status = SBX_OK;
}

void sbx_result_init(struct sbx_result *res, const struct sbx_limits *lim)
{
	memset(res, 0, sizeof *res);
	cr_buf_init(&res->out, lim->output_limit_bytes);
	cr_buf_init(&res->err, lim->output_limit_bytes);
	res->exit_code = -1;
}

void sbx_result_free(struct sbx_result *res)
{
	cr_buf_free(&res->out);
	cr_buf_free(&res->err);
	for (size_t i = 0; i < res->n_files; i++)
		free(res->files[i].path);
	free(res->files);
	res->files = NULL;
	res->n_files = 0;
}

void sbx_setup_error(struct sbx_result *res, const char *step, const struct cr_err *e)
{
	res->status = SBX_SANDBOX_ERROR;
	snprintf(res->error_step, sizeof res->error_step, "%s", step);
	res->error_errno = e->code;
	snprintf(res->error_msg, sizeof res->error_msg, "%s", e->msg);
}
