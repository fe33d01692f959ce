/* server/daemon.c -- the libmicrohttpd daemon of the front: starting and stopping it, the
 * connection watchdog, housekeeping, and the front's own log lines.
 *
 * Slow clients: libmicrohttpd closes a connection idle for idle_timeout_s, but a client that
 * trickles its head a byte at a time is never idle; the watchdog thread cuts a connection whose
 * request head has not arrived within header_timeout_s of its accept (idle_timeout_s after the
 * previous request on a kept-alive connection).  Housekeeping also forgets the ids of sessions
 * the engine ended by itself (expiry, idleness).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "server/srv_internal.h"

/* Per connection, for the watchdog. */
struct conn_slot {
	int fd;
	uint64_t deadline_us; /* 0: a request is being handled */
	bool cut;
	struct conn_slot *prev, *next;
};

static struct {
	const struct srv_config *cfg;
	struct MHD_Daemon *d;
	pthread_mutex_t slots_lock;
	struct conn_slot *slots;
	pthread_mutex_t hk_lock;
	pthread_cond_t hk_cond;
	bool stopping;
} g = {.slots_lock = PTHREAD_MUTEX_INITIALIZER, .hk_lock = PTHREAD_MUTEX_INITIALIZER,
       .hk_cond = PTHREAD_COND_INITIALIZER};

const struct srv_config *srv_cfg(void)
{
	return g.cfg;
}

void srv_config_init(struct srv_config *c)
{
	memset(c, 0, sizeof *c);
	c->listen_fd = -1;
	c->max_sandboxes = 64;
	c->max_connections = 512;
	c->per_ip_connections = 256;
	c->idle_timeout_s = 30;
	c->header_timeout_s = 10;
	c->max_json_bytes = 2u << 20;
	c->max_upload_bytes = 256u << 20;
	c->max_download_bytes = 256u << 20;
	c->log_requests = true;
	c->ready_fd = -1;
}

void srv_conn_deadline(struct MHD_Connection *conn, uint64_t deadline_us)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct conn_slot *slot = ci ? ci->socket_context : NULL;
	if (!slot)
		return;
	pthread_mutex_lock(&g.slots_lock);
	slot->deadline_us = deadline_us;
	pthread_mutex_unlock(&g.slots_lock);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	(void)cls;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		struct conn_slot *s = calloc(1, sizeof *s);
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (!s || !ci) {
			free(s);
			return;
		}
		s->fd = ci->connect_fd;
		s->deadline_us = srv_now_us() + (uint64_t)g.cfg->header_timeout_s * 1000000;
		pthread_mutex_lock(&g.slots_lock);
		s->next = g.slots;
		if (g.slots)
			g.slots->prev = s;
		g.slots = s;
		pthread_mutex_unlock(&g.slots_lock);
		*socket_context = s;
		return;
	}
	struct conn_slot *s = *socket_context;
	if (!s)
		return;
	/* under the lock: the watchdog never shuts down an fd that is about to be reused */
	pthread_mutex_lock(&g.slots_lock);
	if (s->prev)
		s->prev->next = s->next;
	else
		g.slots = s->next;
	if (s->next)
		s->next->prev = s->prev;
	pthread_mutex_unlock(&g.slots_lock);
	free(s);
	*socket_context = NULL;
}

static void watchdog_pass(void)
{
	uint64_t now = srv_now_us();
	pthread_mutex_lock(&g.slots_lock);
	for (struct conn_slot *s = g.slots; s; s = s->next) {
		if (s->deadline_us && now > s->deadline_us && !s->cut) {
			shutdown(s->fd, SHUT_RDWR); /* libmicrohttpd sees EOF and closes it */
			s->cut = true;
		}
	}
	pthread_mutex_unlock(&g.slots_lock);
}

static size_t keep_escaped(void *cls, struct MHD_Connection *c, char *s)
{
	(void)cls;
	(void)c;
	return strlen(s);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	char msg[512];
	vsnprintf(msg, sizeof msg, fmt, ap);
	size_t n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	cr_log(CR_LOG_WARN, "http: %s", msg);
}

/* -- housekeeping ------------------------------------------------------------------------ */

/* Forgets ids whose session the engine ended on its own (timeout, idleness, death). */
static void prune_ids(struct eng_client **cl)
{
	struct cr_err err = {0};
	if (!*cl && !(*cl = eng_client_connect(g.cfg->engine_socket, &err)))
		return;
	uint64_t snap = srv_now_us() / 1000;
	struct eng_session_info *v = NULL;
	size_t n = 0;
	if (eng_client_list_sessions(*cl, &v, &n, &err) < 0) {
		eng_client_close(*cl);
		*cl = NULL;
		return;
	}
	uint64_t *ids = n ? malloc(n * sizeof *ids) : NULL;
	if (!n || ids) {
		for (size_t i = 0; i < n; i++)
			ids[i] = v[i].session;
		srv_ids_prune(ids, n, snap);
	}
	free(ids);
	free(v);
}

static void *housekeeping(void *arg)
{
	(void)arg;
	struct eng_client *cl = NULL;
	unsigned tick = 0;
	pthread_mutex_lock(&g.hk_lock);
	while (!g.stopping) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&g.hk_cond, &g.hk_lock, &ts);
		if (g.stopping)
			break;
		pthread_mutex_unlock(&g.hk_lock);
		watchdog_pass();
		if (++tick % 5 == 0)
			prune_ids(&cl);
		pthread_mutex_lock(&g.hk_lock);
	}
	pthread_mutex_unlock(&g.hk_lock);
	eng_client_close(cl);
	return NULL;
}

/* Logs of the front are JSON lines like the request log. */
static void json_sink(enum cr_log_level level, const char *msg, void *ctx)
{
	(void)ctx;
	static const char *const LV[] = {"debug", "info", "warn", "error"};
	char ts[32];
	srv_rfc3339(srv_unix_ms(), ts, sizeof ts);
	json_t *o = json_pack("{s:s, s:s, s:s}", "ts", ts, "level", LV[level & 3], "msg", msg);
	char *s = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
	json_decref(o);
	if (!s)
		return;
	size_t l = strlen(s);
	s[l] = '\n';
	(void)!write(2, s, l + 1);
	free(s);
}

int srv_run(const struct srv_config *cfg, struct cr_err *err)
{
	g.cfg = cfg;
	srv_http_init();
	int r = srv_ids_init(cfg->max_sandboxes * 2 + 64, err);
	if (r < 0)
		return r;
	cr_log_set_sink(json_sink, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL); /* every thread started below inherits it */
	g.d = MHD_start_daemon(
		MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG,
		0, NULL, NULL, srv_on_request, NULL, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
		MHD_OPTION_LISTEN_SOCKET, cfg->listen_fd,
		MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, cfg->per_ip_connections,
		MHD_OPTION_CONNECTION_TIMEOUT, cfg->idle_timeout_s,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024),
		MHD_OPTION_NOTIFY_COMPLETED, srv_on_completed, NULL,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
		MHD_OPTION_UNESCAPE_CALLBACK, keep_escaped, NULL,
		MHD_OPTION_END);
	if (!g.d) {
		srv_ids_free();
		return cr_failx(err, EIO, "cannot start the HTTP server (libmicrohttpd)");
	}
	pthread_t hk;
	bool hk_started = pthread_create(&hk, NULL, housekeeping, NULL) == 0;
	if (cfg->ready_fd >= 0) {
		(void)!write(cfg->ready_fd, "ok\n", 3);
		close(cfg->ready_fd);
	}
	int sig = 0;
	sigwait(&set, &sig);
	cr_log(CR_LOG_INFO, "stopping on signal %d", sig);
	pthread_mutex_lock(&g.hk_lock);
	g.stopping = true;
	pthread_cond_signal(&g.hk_cond);
	pthread_mutex_unlock(&g.hk_lock);
	if (hk_started)
		pthread_join(hk, NULL);
	MHD_stop_daemon(g.d);
	g.d = NULL;
	srv_ids_free();
	return 0;
}
