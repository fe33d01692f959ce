/* engine/manager.c -- the engine manager's event loop and its clients.
 *
 * One thread, one epoll.  Every fd is registered with a tagged pointer (what it is + whose it
 * is).  Clients are authenticated once, by SO_PEERCRED at accept: the trusted uid may mount host
 * paths and collect files; the registered untrusted pid (an unprivileged front) may not; anyone
 * else is refused.  Requests are fixed binary layouts (engine/wire.h), validated here before any
 * session sees them.  Writes are buffered and bounded; a slow client only stalls its own
 * session.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "engine/manager_internal.h"

const struct eng_limits eng_limits_default = {
	.memory_bytes = 512ULL << 20,
	.pids = 64,
	.cpus_milli = 0,
	.cell_timeout_ms = 30000,
	.max_cells = 0,
	.idle_timeout_s = 600,
	.lifetime_s = 3600,
	.tmp_bytes = 256ULL << 20,
	.output_bytes = 4ULL << 20,
	.file_size_bytes = 256ULL << 20,
};

void eng_config_init(struct eng_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->pool_size = 2;
	cfg->max_sessions = 64;
	cfg->limits = eng_limits_default;
	cfg->uid_base = 300000;
	cfg->trusted_uid = geteuid();
	cfg->untrusted_pid = -1;
	cfg->idle_exit_s = 900;
	cfg->watch_pidfd = -1;
}

uint64_t mgr_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

uint64_t mgr_now_ms(void)
{
	return mgr_now_us() / 1000;
}

void mgr_watch(struct mgr *m, int fd, enum mgr_tag tag, void *ptr, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.u64 = (uint64_t)(uintptr_t)ptr | tag};
	if (epoll_ctl(m->ep, EPOLL_CTL_MOD, fd, &ev) < 0 && errno == ENOENT)
		epoll_ctl(m->ep, EPOLL_CTL_ADD, fd, &ev);
}

void mgr_unwatch(struct mgr *m, int fd)
{
	if (fd >= 0)
		epoll_ctl(m->ep, EPOLL_CTL_DEL, fd, NULL);
}

int eng_listen_unix(const char *path, struct cr_err *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof sa.sun_path)
		return cr_failx(err, ENAMETOOLONG, "socket path %s is too long", path);
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	char dir[sizeof sa.sun_path];
	snprintf(dir, sizeof dir, "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			return cr_fail(err, errno, "mkdir %s", dir);
	}
	/* Bound and listening under a name of its own, then renamed into place: the path
	 * appears (or replaces an old daemon's) only once a connect() to it can succeed. */
	char tmp[sizeof sa.sun_path];
	bool staged = snprintf(tmp, sizeof tmp, "%s.%d", path, (int)getpid()) < (int)sizeof tmp;
	if (staged)
		snprintf(sa.sun_path, sizeof sa.sun_path, "%s", tmp);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return cr_fail(err, errno, "socket");
	unlink(sa.sun_path);
	mode_t old = umask(0177);
	int r = bind(fd, (struct sockaddr *)&sa, sizeof sa);
	umask(old);
	if (r < 0 || listen(fd, 128) < 0 || (staged && rename(tmp, path) < 0)) {
		int e = errno;
		if (r == 0 && staged)
			unlink(tmp);
		close(fd);
		return cr_fail(err, e, "listen on %s", path);
	}
	return fd;
}

/* -- client output ---------------------------------------------------------------------- */

static void client_arm(struct client *c)
{
	uint32_t want = EPOLLIN | EPOLLRDHUP | (c->out.len > c->out_off ? EPOLLOUT : 0);
	if (want != c->ep_events) {
		c->ep_events = want;
		mgr_watch(c->m, c->fd, TAG_CLIENT, c, want);
	}
}

void client_flush(struct client *c)
{
	while (!c->dead && c->out.len > c->out_off) {
		ssize_t n = write(c->fd, c->out.data + c->out_off, c->out.len - c->out_off);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			c->dead = true;
			return;
		}
		c->out_off += (size_t)n;
	}
	if (c->out_off == c->out.len) {
		/* drained: give big buffers back */
		if (c->out.cap > (1u << 20))
			cr_buf_free(&c->out);
		else
			cr_buf_reset(&c->out);
		c->out_off = 0;
	} else if (c->out_off > (1u << 20)) {
		cr_buf_consume(&c->out, c->out_off);
		c->out_off = 0;
	}
	if (!c->dead)
		client_arm(c);
}

bool client_backlogged(const struct client *c)
{
	return c->out.len - c->out_off > MGR_CLIENT_OUT_HIGH;
}

void client_send2(struct client *c, uint32_t type, const void *a, size_t an, const void *b,
		  size_t bn)
{
	if (c->dead)
		return;
	if (eng_frame_put2(&c->out, type, a, an, b, bn) < 0) {
		/* a client this far behind is broken: drop it rather than grow without bound */
		cr_log(CR_LOG_WARN, "engine: dropping a client whose output exceeds %u bytes",
		       MGR_CLIENT_OUT_MAX);
		c->dead = true;
		return;
	}
	if (c->m->corked && !client_backlogged(c))
		c->dirty = true;
	else
		client_flush(c);
}

void client_send(struct client *c, uint32_t type, const void *p, size_t n)
{
	client_send2(c, type, p, n, NULL, 0);
}

void client_error(struct client *c, int errnum, const char *fmt, ...)
{
	struct eng_rsp_error e = {.errnum = errnum};
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e.message, sizeof e.message, fmt, ap);
	va_end(ap);
	client_send(c, ENG_RSP_ERROR, &e, sizeof e);
}

void client_ok(struct client *c, uint64_t value)
{
	struct eng_rsp_ok ok = {.value = value};
	client_send(c, ENG_RSP_OK, &ok, sizeof ok);
}

static void client_on_event(struct client *c, uint32_t events)
{
	if (events & EPOLLOUT) {
		client_flush(c);
		if (c->op == OP_FILE_READ)
			files_read_pump(c);
		if (c->op == OP_EXEC && c->sess)
			session_resume(c->sess);
	}
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
		for (int budget = 64; budget > 0 && !c->dead; budget--) {
			int r = eng_reader_feed(&c->rd, c->fd);
			if (r == 0)
				break;
			if (r < 0) {
				if (r == -E2BIG)
					client_error(c, E2BIG, "request larger than %u bytes",
						     ENG_MAX_CLIENT_FRAME);
				c->dead = true;
				break;
			}
			mgr_handle_request(c, c->rd.hdr.type,
					   c->rd.payload.data ? c->rd.payload.data : "", c->rd.payload.len);
			eng_reader_next(&c->rd);
			if (c->rd.payload.cap > (1u << 20))
				cr_buf_free(&c->rd.payload);
		}
	}
}

static void accept_clients(struct mgr *m)
{
	for (;;) {
		int fd = accept4(m->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			return;
		struct ucred cred;
		socklen_t cl = sizeof cred;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0) {
			close(fd);
			continue;
		}
		bool trusted = cred.uid == m->cfg->trusted_uid || cred.uid == 0;
		bool front = m->cfg->untrusted_pid > 0 && cred.pid == m->cfg->untrusted_pid;
		if (!trusted && !front) {
			cr_log(CR_LOG_WARN, "engine: refused a connection from uid %u pid %d",
			       (unsigned)cred.uid, (int)cred.pid);
			close(fd);
			continue;
		}
		struct client *c = calloc(1, sizeof *c);
		if (!c) {
			close(fd);
			continue;
		}
		c->m = m;
		c->fd = fd;
		c->trusted = trusted && !front;
		c->file_fd = -1;
		eng_reader_init(&c->rd, ENG_MAX_CLIENT_FRAME);
		cr_buf_init(&c->out, MGR_CLIENT_OUT_MAX);
		c->next = m->clients;
		m->clients = c;
		client_arm(c);
	}
}

static void reap_clients(struct mgr *m)
{
	struct client **pp = &m->clients;
	while (*pp) {
		struct client *c = *pp;
		if (!c->dead) {
			pp = &c->next;
			continue;
		}
		*pp = c->next;
		session_client_gone(c);
		mgr_unwatch(m, c->fd);
		close(c->fd);
		if (c->file_fd >= 0)
			close(c->file_fd);
		eng_reader_free(&c->rd);
		cr_buf_free(&c->out);
		free(c);
	}
}

static int setup(struct mgr *m, const struct eng_config *cfg, int listen_fd, struct cr_err *err)
{
	memset(m, 0, sizeof *m);
	m->cfg = cfg;
	m->listen_fd = listen_fd;
	m->zyg_ctl = m->zyg_pidfd = -1;
	m->next_id = 1;
	/* About a dozen fds per live session (channels, pipes, pidfd, the cgroup counter files it
	 * keeps open) and two per client: the usual soft limit of 1024 would fail sessions well
	 * below --max-sessions.  The hard limit is ours to take (capped: no sandbox sees it, every
	 * session gets its own RLIMIT_NOFILE from the checklist). */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max && rl.rlim_cur < 65536) {
		rl.rlim_cur = rl.rlim_max < 65536 ? rl.rlim_max : 65536;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	m->ep = epoll_create1(EPOLL_CLOEXEC);
	if (m->ep < 0)
		return cr_fail(err, errno, "epoll");
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	m->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (m->sigfd < 0)
		return cr_fail(err, errno, "signalfd");
	mgr_watch(m, m->sigfd, TAG_SIGNAL, m, EPOLLIN);
	if (cfg->watch_pidfd >= 0)
		mgr_watch(m, cfg->watch_pidfd, TAG_SIGNAL, m, EPOLLIN);
	if (listen_fd >= 0) {
		fcntl(listen_fd, F_SETFL, O_NONBLOCK);
		mgr_watch(m, listen_fd, TAG_LISTEN, m, EPOLLIN);
	}
	struct cr_err e = {0};
	if (sbx_cg_detect(NULL, NULL, cfg->cgroup_parent ? cfg->cgroup_parent
							 : getenv("CORRAL_CGROUP_PARENT"),
			  &m->cg_host, &e) < 0)
		m->cg_host.mode = SBX_CG_NONE;
	if (m->cg_host.mode != SBX_CG_NONE)
		sbx_cg_sweep(&m->cg_host);
	else
		cr_log(CR_LOG_WARN, "engine: memory, pids and cpu limits are not enforced here: %s",
		       m->cg_host.note);
	m->idle_since_ms = mgr_now_ms();
	return zygote_start(m, err);
}

int eng_manager_run(const struct eng_config *cfg, int listen_fd, struct cr_err *err)
{
	static struct mgr mgr;
	struct mgr *m = &mgr;
	int r = setup(m, cfg, listen_fd, err);
	if (r < 0)
		return r;
	uint64_t stop_deadline_ms = 0;
	for (;;) {
		uint64_t now = mgr_now_ms();
		if (m->stopping) {
			/* every session has been killed (below); wait, briefly, until their inits have
			 * been reaped and their cgroups removed, so that nothing is left for the next
			 * start's sweep */
			if (!stop_deadline_ms) {
				stop_deadline_ms = now + MGR_STOP_GRACE_MS;
				if (cfg->watch_pidfd >= 0) /* level-triggered: it would wake us for good */
					mgr_unwatch(m, cfg->watch_pidfd);
			}
			if (m->n_live + m->n_pool + m->n_spawning == 0 &&
			    (!m->sessions || now >= stop_deadline_ms))
				break;
		}
		uint64_t next = session_next_deadline_ms(m);
		if (pool_next_deadline_ms(m) < next)
			next = pool_next_deadline_ms(m);
		int timeout = next == UINT64_MAX ? 1000 : (next <= now ? 0 : (int)(next - now));
		if (timeout > 1000)
			timeout = 1000;
		struct epoll_event evs[64];
		int n = epoll_wait(m->ep, evs, 64, timeout);
		m->corked = true;
		for (int i = 0; i < n; i++) {
			uint64_t d = evs[i].data.u64;
			enum mgr_tag tag = (enum mgr_tag)(d & 15);
			void *ptr = (void *)(uintptr_t)(d & ~(uint64_t)15);
			switch (tag) {
			case TAG_LISTEN:
				accept_clients(m);
				break;
			case TAG_SIGNAL: {
				/* a signal, or the watched process (e.g. the HTTP front) exited */
				struct signalfd_siginfo si;
				while (read(m->sigfd, &si, sizeof si) == sizeof si)
					m->stopping = true;
				if (evs[i].events & EPOLLIN)
					m->stopping = true;
				break;
			}
			case TAG_ZYGOTE:
				zygote_on_ctl(m);
				break;
			case TAG_ZYGOTE_PID:
				zygote_on_exit(m);
				break;
			case TAG_CLIENT:
				client_on_event(ptr, evs[i].events);
				break;
			default:
				session_on_event(ptr, tag, evs[i].events);
			}
		}
		m->corked = false;
		for (struct client *c = m->clients; c; c = c->next)
			if (c->dirty) {
				c->dirty = false;
				client_flush(c);
			}
		now = mgr_now_ms();
		for (struct session *s = m->sessions; s; s = s->next)
			session_on_timer(s, now);
		if (m->stopping) {
			for (struct session *s = m->sessions; s; s = s->next)
				if (s->state != S_DEAD)
					session_kill(s, "engine shutting down");
			if (m->listen_fd >= 0) {
				mgr_unwatch(m, m->listen_fd);
				close(m->listen_fd);
				m->listen_fd = -1;
			}
		}
		reap_clients(m);
		session_reap_dead(m);
		if (!m->stopping) {
			session_create_pending(m);
			pool_refill(m);
		}
		if (cfg->exit_when_idle && !m->stopping) {
			if (m->n_live > 0 || m->clients)
				m->idle_since_ms = now;
			else if (now - m->idle_since_ms > (uint64_t)cfg->idle_exit_s * 1000)
				m->stopping = true;
		}
	}
	if (m->zyg_pid > 0) {
		kill(m->zyg_pid, SIGKILL);
		siginfo_t si;
		waitid(P_PIDFD, (id_t)m->zyg_pidfd, &si, WEXITED);
	}
	while (m->clients) {
		m->clients->dead = true;
		reap_clients(m);
	}
	stage_cleanup(m);
	close(m->ep);
	close(m->sigfd);
	return 0;
}
