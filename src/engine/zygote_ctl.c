/* engine/zygote_ctl.c -- the manager's side of the zygote: start and restart it, ask it for
 * contained sessions (SPAWN with the session's plan and fds), finish their start (cgroup on v2
 * without clone3, id maps when unprivileged, GO), and keep the warm pool full. */
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
#include "core/fdpass.h"
#include "core/log.h"
#include "core/text.h"
#include "engine/manager_internal.h"
#include "engine/zygote_proto.h"
#include "sandbox/contain.h"

/* ---- the zygote ----------------------------------------------------------------------- */

static void cache_dir(char *out, size_t n)
{
	const char *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	if (geteuid() == 0)
		snprintf(out, n, "/var/cache/corral");
	else if (xdg && *xdg)
		snprintf(out, n, "%s/corral", xdg);
	else
		snprintf(out, n, "%s/.cache/corral", home && *home ? home : "/tmp");
	mkdir(out, 0700);
	size_t l = strlen(out);
	snprintf(out + l, n - l, "/matplotlib");
	mkdir(out, 0700);
}

int zygote_start(struct mgr *m, struct cr_err *err)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return cr_fail(err, errno, "zygote socketpair");
	char mpl[512], mplenv[600];
	cache_dir(mpl, sizeof mpl);
	snprintf(mplenv, sizeof mplenv, "MPLCONFIGDIR=%s", mpl);
	/* Built from nothing: the zygote never sees a secret or the caller's environment. */
	char *envp[] = {(char *)"PATH=/usr/local/bin:/usr/bin:/bin", (char *)"HOME=/tmp",
			(char *)"LANG=C.UTF-8", (char *)"LC_ALL=C.UTF-8", (char *)"MPLBACKEND=Agg",
			mplenv, (char *)"OPENBLAS_NUM_THREADS=1", (char *)"OMP_NUM_THREADS=1",
			(char *)"PYTHONDONTWRITEBYTECODE=1", NULL};
	char *argv[] = {(char *)"corral-zygote", NULL};
	pid_t pid = fork();
	if (pid < 0) {
		close(sv[0]);
		close(sv[1]);
		return cr_fail(err, errno, "fork zygote");
	}
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		int null = open("/dev/null", O_RDWR);
		if (dup2(sv[1], 3) < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0)
			_exit(127);
		syscall(SYS_close_range, 4, ~0U, 0);
		execve(m->cfg->zygote_path, argv, envp);
		_exit(127);
	}
	close(sv[1]);
	m->zyg_ctl = sv[0];
	m->zyg_pid = pid;
	m->zyg_ready = false;
	m->zyg_pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	fcntl(m->zyg_ctl, F_SETFL, O_NONBLOCK);
	mgr_watch(m, m->zyg_ctl, TAG_ZYGOTE, m, EPOLLIN);
	if (m->zyg_pidfd >= 0)
		mgr_watch(m, m->zyg_pidfd, TAG_ZYGOTE_PID, m, EPOLLIN);
	return 0;
}

void zygote_on_exit(struct mgr *m)
{
	siginfo_t si;
	memset(&si, 0, sizeof si);
	waitid(P_PIDFD, (id_t)m->zyg_pidfd, &si, WEXITED | WNOHANG);
	cr_log(CR_LOG_WARN, "engine: the zygote exited (status %d); restarting it", si.si_status);
	mgr_unwatch(m, m->zyg_ctl);
	mgr_unwatch(m, m->zyg_pidfd);
	close(m->zyg_ctl);
	close(m->zyg_pidfd);
	m->zyg_ctl = m->zyg_pidfd = -1;
	m->zyg_pid = 0;
	m->zyg_ready = false;
	for (struct session *s = m->sessions; s; s = s->next)
		if (s->state == S_SPAWNING && s->pid <= 0)
			session_fail(s, "the zygote exited while spawning");
	if (!m->stopping) {
		struct cr_err e;
		if (zygote_start(m, &e) < 0)
			cr_log(CR_LOG_ERROR, "engine: cannot restart the zygote: %s", e.msg);
	}
}

/* ---- spawning ----------------------------------------------------------------------------- */

static void close_fds(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

int session_spawn(struct session *s, const struct eng_mount *mounts, uint32_t n_mounts,
			 struct cr_err *err)
{
	struct mgr *m = s->m;
	if (!m->zyg_ready)
		return cr_failx(err, EAGAIN, "the engine's zygote is not ready yet");
	static char prog[] = "python3";
	static char *argv[] = {prog, NULL};
	struct sbx_config cfg;
	sbx_config_init(&cfg);
	cfg.limits = to_sbx(&s->limits);
	cfg.argv = argv;
	cfg.uid = cfg.gid = s->uid;
	for (uint32_t i = 0; i < n_mounts; i++) {
		if (!memchr(mounts[i].host, 0, sizeof mounts[i].host) ||
		    !memchr(mounts[i].dest, 0, sizeof mounts[i].dest))
			return cr_failx(err, EINVAL, "malformed mount");
		/* (the config keeps the pointers: the staged path lives in s->staged) */
		const char *src = mounts[i].host;
		int r = mounts[i].writable ? 0 : stage_file(s, i, mounts[i].host, &src, err);
		if (r == 0)
			r = sbx_config_add_mount(&cfg, src, mounts[i].dest, mounts[i].writable != 0,
						 err);
		if (r < 0) {
			stage_release(s);
			return r;
		}
	}
	if (s->want_output)
		cfg.output_dir = "/"; /* validated as a directory; the engine keeps the tmpfs fd */
	CR_AUTOFREE struct sbx_plan *plan = malloc(sizeof *plan);
	if (!plan)
		return cr_fail(err, ENOMEM, "plan");
	int r = sbx_plan_build(&cfg, plan, err);
	if (r < 0)
		return r;
	plan->send_root = 1;
	plan->keep_fds = 1;
	plan->engine_dirs = 1;
	/* Sessions inherit the zygote's nice 10 (spawning and waiting in the pool are background
	 * work); a claimed session is put back to 0 by session_foreground(). */
	plan->set_nice = 0;
	snprintf(plan->workdir, sizeof plan->workdir, "/home/user");

	if (m->cg_host.mode != SBX_CG_NONE) {
		char name[96];
		sbx_cg_make_name(name, sizeof name, (unsigned)s->id);
		struct sbx_limits lim = to_sbx(&s->limits);
		r = sbx_cg_create(&m->cg_host, name, &lim, &s->cg, err);
		if (r < 0 && !(plan->userns && (r == -EACCES || r == -EPERM || r == -EROFS)))
			return r;
	}

	int ctl[2] = {-1, -1}, chan[2] = {-1, -1}, outp[2] = {-1, -1}, errp[2] = {-1, -1};
	CR_AUTOCLOSE int memfd = memfd_create("corral-plan", MFD_CLOEXEC);
	if (memfd < 0 || write(memfd, plan, sizeof *plan) != (ssize_t)sizeof *plan)
		return cr_fail(err, errno ? errno : EIO, "plan memfd");
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, chan) < 0 ||
	    pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		int e = errno;
		int all[8] = {ctl[0], ctl[1], chan[0], chan[1], outp[0], outp[1], errp[0], errp[1]};
		close_fds(all, 8);
		return cr_fail(err, e, "session channels");
	}
	int fds[ZYG_NFDS] = {memfd, ctl[1], chan[1], outp[1], errp[1], sbx_cg_clone_fd(&s->cg)};
	int nfds = fds[ZYG_FD_CGROUP] >= 0 ? ZYG_NFDS : ZYG_NFDS - 1;
	struct zyg_spawn req = {.magic = ZYG_MAGIC, .session = s->id, .cg = s->cg};
	sbx_cg_forget_fds(&req.cg); /* the zygote gets paths, not our fds */
	struct iovec iov = {.iov_base = &req, .iov_len = sizeof req};
	union {
		char buf[CMSG_SPACE(sizeof(int) * ZYG_NFDS)];
		struct cmsghdr align;
	} u;
	memset(&u, 0, sizeof u);
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			    .msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
	memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
	ssize_t sent = sendmsg(m->zyg_ctl, &mh, MSG_NOSIGNAL);
	int e = errno;
	int child_ends[4] = {ctl[1], chan[1], outp[1], errp[1]};
	close_fds(child_ends, 4);
	if (sent < 0) {
		int mine[4] = {ctl[0], chan[0], outp[0], errp[0]};
		close_fds(mine, 4);
		return cr_fail(err, e, "send spawn request to the zygote");
	}
	s->ctl = ctl[0];
	s->chan = chan[0];
	s->out_r = outp[0];
	s->err_r = errp[0];
	fcntl(s->chan, F_SETFL, O_NONBLOCK);
	fcntl(s->out_r, F_SETFL, O_NONBLOCK);
	fcntl(s->err_r, F_SETFL, O_NONBLOCK);
	fcntl(s->ctl, F_SETFL, O_NONBLOCK);
	/* GO says the cgroup and the id maps are in place.  When the child joins its (v1) cgroup
	 * itself and there are no id maps, nothing is left for us to do before it: queue GO now,
	 * so the checklist runs straight through instead of waiting a round trip through our
	 * event loop -- during which the zygote, whose memory the child borrows, waits too. */
	bool v2_attach = s->cg.created && s->cg.mode == SBX_CG_V2;
	struct sbx_msg go = {.type = SBX_MSG_GO};
	s->go_sent = !v2_attach && geteuid() == 0 &&
		     send(s->ctl, &go, sizeof go, MSG_NOSIGNAL) == (ssize_t)sizeof go;
	s->state = S_SPAWNING;
	s->spawn_deadline_ms = mgr_now_ms() + MGR_SPAWN_TIMEOUT_MS;
	m->n_spawning++;
	return 0;
}

static void spawn_pooled(struct mgr *m)
{
	struct session *s = session_new(m);
	if (!s)
		return;
	struct cr_err err = {0};
	if (session_spawn(s, NULL, 0, &err) < 0) {
		cr_log(CR_LOG_WARN, "engine: cannot spawn a warm session: %s", err.msg);
		snprintf(s->error, sizeof s->error, "%s", err.msg);
		s->state = S_DEAD;
		m->zyg_restart_ms = mgr_now_ms() + 1000; /* back off */
		return;
	}
	s->flags |= SF_POOL; /* destined for the pool */
}

void pool_admit(struct session *s)
{
	if (s->state != S_SPAWNING || !s->contained || !s->warm || !(s->flags & SF_POOL))
		return;
	s->state = S_POOLED;
	s->m->n_pool++;
}

/* Spawning is background work: the zygote's clone, the new init's checklist and our own share
 * of it (cgroup, plan, channels) take a few ms of CPU on a 2-core machine -- exactly when a client
 * that has just claimed a session waits for its first cell.  So a claim holds the refill back
 * until that cell is done, for at most MGR_REFILL_HOLD_MS; an empty pool is refilled at once. */
void pool_hold(struct mgr *m)
{
	m->refill_hold_us = mgr_now_us() + MGR_REFILL_HOLD_MS * 1000ULL;
}

void pool_release(struct mgr *m)
{
	m->refill_hold_us = 0;
}

uint64_t pool_next_deadline_ms(const struct mgr *m)
{
	return m->refill_hold_us ? m->refill_hold_us / 1000 + 1 : UINT64_MAX;
}

void pool_refill(struct mgr *m)
{
	if (!m->zyg_ready || mgr_now_ms() < m->zyg_restart_ms)
		return;
	if (m->refill_hold_us) {
		if (m->n_pool > 0 && mgr_now_us() < m->refill_hold_us)
			return;
		m->refill_hold_us = 0;
	}
	unsigned pool_spawning = 0;
	for (struct session *s = m->sessions; s; s = s->next)
		if (s->state == S_SPAWNING && (s->flags & SF_POOL))
			pool_spawning++;
	while (m->n_pool + pool_spawning < m->cfg->pool_size &&
	       m->n_live + m->n_pool + pool_spawning < m->cfg->max_sessions + m->cfg->pool_size) {
		spawn_pooled(m);
		pool_spawning++;
		if (m->zyg_restart_ms > mgr_now_ms())
			break;
	}
}

static int write_id_maps(pid_t pid, struct cr_err *err)
{
	char path[64], map[64];
	static const char *const files[] = {"setgroups", "uid_map", "gid_map"};
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof path, "/proc/%d/%s", pid, files[i]);
		if (i == 0)
			snprintf(map, sizeof map, "deny");
		else
			snprintf(map, sizeof map, "%u %u 1\n", SBX_INSIDE_UID,
				 i == 1 ? (unsigned)geteuid() : (unsigned)getegid());
		int fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, map, strlen(map)) < 0) {
			int e = errno;
			if (fd >= 0)
				close(fd);
			return cr_fail(err, e, "write %s", path);
		}
		close(fd);
	}
	return 0;
}

void zygote_on_ctl(struct mgr *m)
{
	for (;;) {
		union {
			struct zyg_ready ready;
			struct zyg_spawned spawned;
		} msg;
		memset(&msg, 0, sizeof msg);
		int pidfd;
		ssize_t n = cr_recv_with_fd(m->zyg_ctl, &msg, sizeof msg, &pidfd);
		if (n <= 0)
			return; /* EOF is handled by the zygote's pidfd */
		if (!m->zyg_ready) {
			if (n == (ssize_t)sizeof msg.ready && msg.ready.magic == ZYG_MAGIC) {
				m->zyg_ready = true;
				snprintf(m->python, sizeof m->python, "%s", msg.ready.python);
				msg.ready.preload[sizeof msg.ready.preload - 1] = '\0';
				cr_log(CR_LOG_DEBUG, "engine: zygote ready: python %s, %s", m->python,
				       msg.ready.preload);
			}
			if (pidfd >= 0)
				close(pidfd);
			continue;
		}
		if (n != (ssize_t)sizeof msg.spawned || msg.spawned.magic != ZYG_MAGIC) {
			if (pidfd >= 0)
				close(pidfd);
			continue;
		}
		struct session *s = session_find(m, msg.spawned.session);
		if (!s || s->state != S_SPAWNING) {
			/* nobody wants it any more */
			if (pidfd >= 0) {
				syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
				siginfo_t si;
				waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED);
				close(pidfd);
			}
			continue;
		}
		if (msg.spawned.errnum || pidfd < 0) {
			char why[128];
			snprintf(why, sizeof why, "clone into new namespaces: %s",
				 strerror(msg.spawned.errnum ? msg.spawned.errnum : EINVAL));
			if (pidfd >= 0)
				close(pidfd);
			session_fail(s, why);
			continue;
		}
		s->pid = msg.spawned.pid;
		s->pidfd = pidfd;
		struct cr_err err = {0};
		int r = 0;
		if (!s->go_sent) {
			if (s->cg.created && s->cg.mode == SBX_CG_V2 && !msg.spawned.born_in_cgroup)
				r = sbx_cg_attach(&s->cg, s->pid, &err);
			if (r == 0 && geteuid() != 0)
				r = write_id_maps(s->pid, &err);
			struct sbx_msg go = {.type = SBX_MSG_GO};
			if (r == 0 && send(s->ctl, &go, sizeof go, MSG_NOSIGNAL) < 0)
				r = cr_fail(&err, errno, "start the session");
		}
		mgr_watch(m, s->pidfd, TAG_S_PID, s, EPOLLIN);
		mgr_watch(m, s->ctl, TAG_S_CTL, s, EPOLLIN);
		mgr_watch(m, s->out_r, TAG_S_OUT, s, EPOLLIN);
		mgr_watch(m, s->err_r, TAG_S_ERR, s, EPOLLIN);
		s->ep_chan = EPOLLIN;
		mgr_watch(m, s->chan, TAG_S_CHAN, s, EPOLLIN);
		if (r < 0)
			session_fail(s, err.msg);
	}
}

