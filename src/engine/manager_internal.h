/* engine/manager_internal.h -- state shared by the manager's files (manager.c: loop and
 * clients; session.c: zygote, pool and cells; files.c: file operations). */
#ifndef CORRAL_ENGINE_MANAGER_INTERNAL_H
#define CORRAL_ENGINE_MANAGER_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "core/buf.h"
#include "engine/engine.h"
#include "engine/wire.h"
#include "sandbox/cgroup.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define MGR_CLIENT_OUT_MAX (64u << 20)  /* bounded: a slow client stalls its session instead */
#define MGR_CLIENT_OUT_HIGH (4u << 20)  /* stop reading the session above this */
#define MGR_SESSION_OUT_MAX (8u << 20)
#define MGR_GRACE_MS 2000               /* after SIGINT, before the session is killed */
#define MGR_SIGINT_MERGE_MS 50          /* a deadline this soon after an interrupt is that one */
#define MGR_REINTERRUPT_MS 200          /* an abandoned cell is interrupted again this often */
#define MGR_KEEPALIVE_MS 5000
#define MGR_SPAWN_TIMEOUT_MS 30000
#define MGR_REFILL_HOLD_MS 20           /* a claim delays the pool's refill by at most this */
#define MGR_STOP_GRACE_MS 2000          /* at shutdown: how long killed sessions are waited for */

/* epoll tags: the low bits of the registered pointer say what it is. */
enum mgr_tag { TAG_LISTEN = 1, TAG_SIGNAL, TAG_ZYGOTE, TAG_ZYGOTE_PID, TAG_CLIENT,
	       TAG_S_CHAN, TAG_S_CTL, TAG_S_OUT, TAG_S_ERR, TAG_S_PID };

struct mgr;
struct session;

enum client_op { OP_NONE, OP_CREATE, OP_EXEC, OP_FILE_WRITE, OP_FILE_READ };

struct client {
	struct mgr *m;
	int fd;
	bool trusted;
	bool dead;               /* closing: free once the loop is done with it */
	struct eng_frame_reader rd;
	struct cr_buf out;
	size_t out_off;          /* bytes of out already written */
	enum client_op op;
	struct session *sess;    /* OP_CREATE, OP_EXEC, OP_FILE_* */
	int file_fd;             /* OP_FILE_WRITE / OP_FILE_READ */
	uint64_t file_left;      /* announced bytes still to come (streamed: room left) */
	bool file_stream;        /* ENG_SIZE_STREAM: DATA frames until an empty one */
	uint32_t ep_events;
	struct eng_req_create *pending;  /* a CREATE waiting for the zygote to be ready */
	struct eng_mount *pending_mounts;
	bool dirty;              /* output written while the manager was corked */
	struct client *next;
};

enum sess_state { S_SPAWNING = 1, S_POOLED, S_IDLE, S_BUSY, S_DEAD };

struct session {
	struct mgr *m;
	uint64_t id;
	char name[ENG_NAME_MAX];
	enum sess_state state;
	uint32_t mode;
	uint32_t flags;
	struct eng_limits limits;
	char allow_imports[512];
	char env[4096];          /* the client's extra environment block */
	uint32_t uid, slot;
	struct client *owner;    /* EPHEMERAL sessions die with this connection */
	struct client *waiter;   /* OP_CREATE waiting for the spawn */
	pid_t pid;               /* host pid of the session's init */
	int pidfd, ctl, chan, out_r, err_r, root_fd, output_fd;
	struct sbx_cg cg;
	struct eng_frame_reader rd;    /* frames from the runner */
	struct cr_buf out;             /* frames to the runner */
	size_t out_off;
	uint32_t ep_chan;
	bool started;                  /* START sent */
	bool contained;                /* init said READY */
	bool go_sent;                  /* GO queued with the spawn request: nothing to wait for */
	bool warm;                     /* its runner said it is warm and waits for START */
	bool want_output;
	/* the current cell */
	struct client *cell_client;
	uint64_t cells;
	uint64_t cell_t0_us, cell_deadline_us, keepalive_us;
	int cell_phase;                /* 0 running, 1 interrupted (SIGINT sent), 2 killed */
	uint64_t cell_sigint_us;       /* when session_interrupt last sent SIGINT (0: never) */
	uint64_t cell_cpu0, cell_oom0, cell_pids0, cell_memhits0;
	uint64_t cell_output;          /* stdout+stderr bytes forwarded this cell */
	struct eng_final fin;
	bool cell_is_ctx;
	/* lifetime */
	uint64_t created_ms, last_used_ms, expires_ms;
	uint64_t spawn_deadline_ms;
	char error[256];               /* why it died, if it did */
	char **staged;                 /* copies of its data files until it is contained */
	size_t n_staged;
	struct session *next;
};

struct mgr {
	const struct eng_config *cfg;
	int ep, listen_fd, sigfd;
	int zyg_ctl, zyg_pidfd;
	pid_t zyg_pid;
	bool zyg_ready;
	uint64_t zyg_restart_ms;
	char python[32];
	struct sbx_cg_host cg_host;
	struct client *clients;
	struct session *sessions;
	uint64_t next_id;
	unsigned n_live, n_pool, n_spawning;
	unsigned char slots[65536 / 8];   /* uid slots in use */
	struct eng_stats stats;
	uint64_t idle_since_ms;
	uint64_t refill_hold_us;          /* != 0: no pool refill before this (a claim's first cell) */
	bool stopping;
	char stage_dir[64];               /* copies of data files (stage.c); "" until first used */
	/* While one batch of events is handled, replies are only queued: what they add up to
	 * (a cell's last output and its FINAL) then goes out in one write per client. */
	bool corked;
};

uint64_t mgr_now_ms(void);
uint64_t mgr_now_us(void);
void mgr_watch(struct mgr *m, int fd, enum mgr_tag tag, void *ptr, uint32_t events);
void mgr_unwatch(struct mgr *m, int fd);

/* One complete request from c (requests.c): validated, then dispatched; replies on c. */
void mgr_handle_request(struct client *c, uint32_t type, const char *payload, size_t len);

/* client replies */
void client_send(struct client *c, uint32_t type, const void *p, size_t n);
void client_send2(struct client *c, uint32_t type, const void *a, size_t an, const void *b,
		  size_t bn);
void client_error(struct client *c, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void client_ok(struct client *c, uint64_t value);
void client_flush(struct client *c);
bool client_backlogged(const struct client *c);

/* session internals, shared by session.c, cell.c and zygote_ctl.c */
#define SF_POOL 0x80000000u    /* spawned for the warm pool */
#define SF_COUNTED 0x40000000u /* claimed by a client: counts as live */
/* stage.c: a read-only data file's copy for session s: *out points to its path, owned by s
 * (a directory's *out stays host); released (unlinked) once the session is contained or
 * dead. */
int stage_file(struct session *s, unsigned i, const char *host, const char **out,
	       struct cr_err *err);
void stage_release(struct session *s);
void stage_cleanup(struct mgr *m);

struct session *session_new(struct mgr *m);
void session_fail(struct session *s, const char *why);
struct sbx_limits to_sbx(const struct eng_limits *l);
int session_spawn(struct session *s, const struct eng_mount *mounts, uint32_t n_mounts,
		  struct cr_err *err);
void chan_arm(struct session *s);
void chan_flush(struct session *s);
struct json_t;
int send_json(struct session *s, uint32_t type, struct json_t *j);
void finish_cell(struct session *s, uint32_t status, bool alive);
void drain_pipe(struct session *s, int fd, uint32_t ev);
void on_runner_frame(struct session *s, uint32_t type, const char *p, size_t len);
void session_signal(struct session *s, int sig);

/* zygote_ctl.c: the zygote and the warm pool */
int zygote_start(struct mgr *m, struct cr_err *err);
void zygote_on_ctl(struct mgr *m);
void zygote_on_exit(struct mgr *m);
void pool_refill(struct mgr *m);
void pool_admit(struct session *s);  /* a spawning pool session: pooled once contained and warm */
void pool_hold(struct mgr *m);       /* a session was claimed: refill after its first cell */
void pool_release(struct mgr *m);    /* that first cell is done */
uint64_t pool_next_deadline_ms(const struct mgr *m);

/* session.c: finding, claiming, starting and ending sessions */
struct session *session_find(struct mgr *m, uint64_t id);
struct session *session_find_name(struct mgr *m, const char *name);
void session_create(struct client *c, const struct eng_req_create *req,
		    const struct eng_mount *mounts);
void session_hand_to_waiter(struct session *s); /* contained: start it for the client waiting */
void session_kill(struct session *s, const char *why);
void session_client_gone(struct client *c);
void session_create_pending(struct mgr *m); /* retries CREATEs that waited for the zygote */
void session_reap_dead(struct mgr *m);

/* cell.c: cells, contexts, interrupts */
void session_execute(struct client *c, struct session *s, const struct eng_req_execute *req,
		     const char *code, size_t code_len);
void session_context(struct client *c, struct session *s, const char *name, bool create);
void session_interrupt(struct session *s);
/* Busy with no one to answer: its client went away (interrupted again until it ends). */
static inline bool session_abandoned(const struct session *s)
{
	return s->state == S_BUSY && !s->cell_client;
}
void session_resume(struct session *s); /* the cell's client drained its backlog */

/* session_events.c: a session's fds and timers */
void session_on_event(struct session *s, enum mgr_tag tag, uint32_t events);
void session_on_timer(struct session *s, uint64_t now_ms);
void session_fill_info(struct session *s, struct eng_session_info *out);
uint64_t session_next_deadline_ms(const struct mgr *m);

/* files.c */
void files_write_begin(struct client *c, struct session *s, const struct eng_req_file *req);
void files_write_data(struct client *c, const char *data, size_t len);
void files_read_begin(struct client *c, struct session *s, const struct eng_req_file *req);
void files_read_pump(struct client *c);
void files_list(struct client *c, struct session *s, const struct eng_req_file *req);
void files_remove(struct client *c, struct session *s, const struct eng_req_file *req);
void files_collect(struct client *c, struct session *s, const struct eng_req_collect *req);

#endif
