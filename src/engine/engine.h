/* engine/engine.h -- Python sessions born warm: the engine manager and its client.
 *
 * The manager is the engine's only privileged process.  It owns the zygote (a warm Python
 * interpreter that forks contained sessions), the warm pool, every session's cgroup, channel
 * and timers, and speaks fixed binary frames (engine/wire.h) to its clients.  Clients -- the
 * `corral exec` CLI, the HTTP front of `corral serve`, the agent of `corral analyze` -- may run
 * unprivileged; whatever JSON a session produces is parsed by them, never by the manager.
 *
 * Manager:
 *   struct eng_config cfg; eng_config_init(&cfg);
 *   cfg.zygote_path = ".../corral-zygote";
 *   int lfd = eng_listen_unix(path, &err);            // or any connected socket fds
 *   eng_manager_run(&cfg, lfd, &err);                 // event loop until SIGTERM/SIGINT
 *
 * Client (blocking, one operation at a time per connection; thread-compatible):
 *   struct eng_client *c = eng_client_connect(path, &err);
 *   struct eng_req_create req = {.mode = ENG_STATEFUL};
 *   eng_client_create(c, &req, NULL, &created, &err);
 *   eng_client_execute(c, created.session, "print(1)", NULL, 0, 0, on_event, ctx, &final, &err);
 *   eng_client_destroy(c, created.session, &err);
 *   eng_client_close(c);
 */
#ifndef CORRAL_ENGINE_ENGINE_H
#define CORRAL_ENGINE_ENGINE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"
#include "core/err.h"
#include "engine/wire.h"

/* Defaults of the engine (one table, mirrored in docs/ENGINE.md). */
extern const struct eng_limits eng_limits_default;

struct eng_config {
	const char *zygote_path;  /* the corral-zygote binary */
	unsigned pool_size;       /* contained sessions kept ready (default 2) */
	unsigned max_sessions;    /* live sessions, pool excluded (default 64) */
	struct eng_limits limits; /* defaults for sessions that ask for nothing */
	uint32_t uid_base;        /* root: sessions run as uid_base + slot (default 300000) */
	const char *cgroup_parent;
	uid_t trusted_uid;        /* peers with this uid may mount host paths and collect files */
	pid_t untrusted_pid;      /* a peer with this pid (e.g. the HTTP front) is accepted, untrusted */
	bool exit_when_idle;      /* daemon mode: exit after idle_exit_s with no session left */
	unsigned idle_exit_s;
	const char *const *extra_env; /* added to every session's environment (K=V) */
	int watch_pidfd;          /* >= 0: when this process exits (e.g. the HTTP front), stop */
};
void eng_config_init(struct eng_config *cfg);

/* Creates a listening unix socket at path (parent directory 0700 is created if missing;
 * the socket is 0600). Returns the fd or -errno. */
int eng_listen_unix(const char *path, struct cr_err *err);

/* Runs the manager on listen_fd until SIGTERM/SIGINT (then destroys every session and the
 * zygote) or, in exit_when_idle mode, until it has been idle long enough. */
int eng_manager_run(const struct eng_config *cfg, int listen_fd, struct cr_err *err);

/* -- client ----------------------------------------------------------------------------- */

struct eng_client;

/* Event callback for execute: type is ENG_EV_STDOUT / STDERR / JSON / KEEPALIVE; data/len are
 * only valid during the call.  Return non-zero to stop listening (the cell is interrupted). */
typedef int (*eng_event_cb)(void *ctx, uint32_t type, const char *data, size_t len);

/* Connects and checks the protocol (HELLO): -EPROTO in err->code when the daemon was built
 * from other sources (e.g. an old daemon after an upgrade); *daemon_pid (may be NULL) gets
 * the daemon's pid. */
struct eng_client *eng_client_connect(const char *path, struct cr_err *err);
pid_t eng_client_daemon_pid(const struct eng_client *c);
struct eng_client *eng_client_from_fd(int fd); /* takes ownership of fd */
void eng_client_close(struct eng_client *c);
int eng_client_fd(const struct eng_client *c);

int eng_client_create(struct eng_client *c, const struct eng_req_create *req,
		      const struct eng_mount *mounts, struct eng_rsp_created *out,
		      struct cr_err *err);
int eng_client_lookup(struct eng_client *c, const char *name, struct eng_rsp_created *out,
		      struct cr_err *err);
int eng_client_execute(struct eng_client *c, uint64_t session, const char *code,
		       const char *context, uint32_t timeout_ms, uint32_t flags, eng_event_cb cb,
		       void *ctx, struct eng_final *final, struct cr_err *err);
/* Runs a program in the session (not Python): argv and env are NULL-terminated, env entries
 * "NAME=value" are added to the session's environment, cwd NULL or "" = the session's.  Its
 * output streams through cb like a cell's; final->exit_code / signal say how it ended (status
 * ENG_F_OK when it ran to its end, whatever its exit code).  A `process` JSON event with its
 * pid comes first. */
int eng_client_command(struct eng_client *c, uint64_t session, const char *cwd,
		       const char *const *argv, const char *const *env, uint32_t timeout_ms,
		       eng_event_cb cb, void *ctx, struct eng_final *final, struct cr_err *err);
/* The payload of such a request (wire.h, ENG_EXEC_COMMAND) into out (reset first). */
int eng_cmd_encode(const char *cwd, const char *const *argv, const char *const *env,
		   struct cr_buf *out, struct cr_err *err);
int eng_client_context(struct eng_client *c, uint64_t session, const char *name, bool create,
		       struct cr_err *err);
/* Interrupts whatever cell or command the session is running (from another connection). */
int eng_client_interrupt(struct eng_client *c, uint64_t session, struct cr_err *err);
int eng_client_write_file(struct eng_client *c, uint64_t session, const char *path,
			  const void *data, size_t len, struct cr_err *err);
/* Streams a file into *out (bounded by max; -EFBIG past it). */
int eng_client_read_file(struct eng_client *c, uint64_t session, const char *path,
			 struct cr_buf *out, struct cr_err *err);
struct eng_dirent {
	uint32_t type;
	uint64_t size;
	int64_t mtime;
	char name[256];
	char reason[64]; /* COLLECT: why a file was skipped ("" if copied) */
};
/* Lists a directory (or, with collect, copies /output into host_dir and lists what it did). */
int eng_client_list(struct eng_client *c, uint64_t session, const char *path,
		    struct eng_dirent **out, size_t *n, struct cr_err *err);
int eng_client_collect(struct eng_client *c, uint64_t session, const char *host_dir,
		       struct eng_dirent **out, size_t *n, struct cr_err *err);
int eng_client_remove(struct eng_client *c, uint64_t session, const char *path,
		      struct cr_err *err);
int eng_client_info(struct eng_client *c, uint64_t session, struct eng_session_info *out,
		    struct cr_err *err);
int eng_client_list_sessions(struct eng_client *c, struct eng_session_info **out, size_t *n,
			     struct cr_err *err);
int eng_client_set_lifetime(struct eng_client *c, uint64_t session, uint32_t lifetime_s,
			    struct cr_err *err);
int eng_client_destroy(struct eng_client *c, uint64_t session, struct cr_err *err);
int eng_client_stats(struct eng_client *c, struct eng_stats *out, struct cr_err *err);

#endif
