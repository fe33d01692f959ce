/* engine/wire.h -- frames on the engine's sockets: client <-> manager, manager <-> runner.
 *
 * One frame = struct eng_frame_hdr (u32 type, u32 len, little-endian) + len payload bytes.
 * The manager is privileged, so everything it *reads* from a client or a session is a fixed
 * binary layout or opaque bytes it only forwards: it never parses JSON (sessions' events are
 * passed through untouched; clients' JSON needs, like a cell's options, are built by the
 * manager itself with jansson from fixed fields).  See docs/design/engine.md.
 *
 *   struct eng_frame_reader r; eng_reader_init(&r, ENG_MAX_CLIENT_FRAME);
 *   while ((n = eng_reader_feed(&r, fd)) > 0) { ... r.hdr, r.payload ... eng_reader_next(&r); }
 */
#ifndef CORRAL_ENGINE_WIRE_H
#define CORRAL_ENGINE_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define ENG_WIRE_VERSION 3 /* bump when a layout below changes (HELLO checks it) */
#define ENG_MAX_CLIENT_FRAME (4u << 20)   /* client -> manager (code <= 1 MiB, file chunks) */
#define ENG_MAX_RUNNER_FRAME (16u << 20)  /* runner -> manager (PNG figures, tables) */
#define ENG_MAX_CODE (1u << 20)
#define ENG_FILE_CHUNK (256u << 10)
#define ENG_NAME_MAX 64
#define ENG_PATH_MAX 1024

struct eng_frame_hdr {
	uint32_t type;
	uint32_t len;
};

/* -- runner protocol (docs/design/runner-protocol.md) ----------------------------------- */
enum {
	RUN_START = 0x01, RUN_EXEC = 0x02, RUN_CTX_CREATE = 0x03, RUN_CTX_DELETE = 0x04,
	RUN_PING = 0x05, RUN_CMD = 0x06,
	RUN_HELLO = 0x81, RUN_STDOUT = 0x82, RUN_STDERR = 0x83, RUN_EVENT = 0x84, RUN_DONE = 0x85,
	RUN_PONG = 0x86,
};
/* The host interrupts cell c (the "cell" number of its EXEC or CMD) with this signal to the
 * session's process group, not with a bare SIGINT: the runner makes it a SIGINT in cell c if c is
 * running, keeps it for c if c has not begun yet (it came while the request was still on its
 * way), and drops it if c has ended (it came late).  SIGRTMIN (34) + 6 .. + 13. */
#define RUN_INTERRUPT_SIG_BASE 40
#define RUN_INTERRUPT_TAGS 8
#define RUN_INTERRUPT_SIG(cell) (RUN_INTERRUPT_SIG_BASE + (int)((cell) % RUN_INTERRUPT_TAGS))

struct run_done {
	uint32_t status; /* 0 ok, 1 error, 2 process ended */
	int32_t exit_code;
	int32_t signal;
	uint32_t reserved;
};

/* -- client <-> manager ---------------------------------------------------------------- */
enum eng_req_type {
	ENG_REQ_HELLO = 1,   /* struct eng_req_hello -> ENG_RSP_OK, or ERROR EPROTO on mismatch */
	ENG_REQ_CREATE,      /* struct eng_req_create + mounts -> ENG_RSP_CREATED */
	ENG_REQ_EXECUTE,     /* struct eng_req_execute + code -> events..., ENG_EV_FINAL */
	ENG_REQ_CTX_CREATE,  /* struct eng_req_ctx -> ENG_EV_JSON (ack), ENG_EV_FINAL */
	ENG_REQ_CTX_DELETE,  /* struct eng_req_ctx -> ENG_EV_JSON, ENG_EV_FINAL */
	ENG_REQ_FILE_WRITE,  /* struct eng_req_file + ENG_REQ_DATA frames (total bytes) -> OK */
	ENG_REQ_DATA,        /* raw chunk of a FILE_WRITE */
	ENG_REQ_FILE_READ,   /* struct eng_req_file -> ENG_RSP_FILE_INFO, ENG_RSP_DATA..., OK */
	ENG_REQ_FILE_LIST,   /* struct eng_req_file -> ENG_RSP_ENTRY..., ENG_RSP_OK */
	ENG_REQ_FILE_REMOVE, /* struct eng_req_file -> ENG_RSP_OK */
	ENG_REQ_INFO,        /* struct eng_req_session -> ENG_RSP_INFO */
	ENG_REQ_LIST,        /* empty -> ENG_RSP_INFO..., ENG_RSP_OK */
	ENG_REQ_DESTROY,     /* struct eng_req_session -> ENG_RSP_OK */
	ENG_REQ_SET_LIFETIME,/* struct eng_req_lifetime -> ENG_RSP_OK */
	ENG_REQ_LOOKUP,      /* struct eng_req_lookup (name) -> ENG_RSP_CREATED (existing) */
	ENG_REQ_COLLECT,     /* struct eng_req_collect (host dir) -> ENG_RSP_ENTRY..., OK; trusted only */
	ENG_REQ_STATS,       /* empty -> ENG_RSP_STATS */
	ENG_REQ_INTERRUPT,   /* struct eng_req_session: interrupt the running cell (client gone) */
};

enum eng_rsp_type {
	ENG_RSP_OK = 100,     /* struct eng_rsp_ok */
	ENG_RSP_ERROR,        /* struct eng_rsp_error */
	ENG_RSP_CREATED,      /* struct eng_rsp_created */
	ENG_RSP_INFO,         /* struct eng_session_info */
	ENG_RSP_FILE_INFO,    /* struct eng_rsp_file_info */
	ENG_RSP_DATA,         /* raw file bytes */
	ENG_RSP_ENTRY,        /* struct eng_rsp_entry + name */
	ENG_RSP_STATS,        /* struct eng_stats */
	ENG_EV_STDOUT = 200,  /* raw bytes */
	ENG_EV_STDERR,        /* raw bytes */
	ENG_EV_JSON,          /* one runner EVENT object, opaque bytes */
	ENG_EV_FINAL,         /* struct eng_final */
	ENG_EV_KEEPALIVE,     /* empty; at least every 5 s while a cell runs */
	ENG_EV_ACCEPTED,      /* empty; the cell was taken (asked for with ENG_EXEC_ACK) */
};

enum eng_mode { ENG_STATEFUL = 0, ENG_STATELESS = 1 };

#define ENG_CREATE_EPHEMERAL 0x1 /* destroyed when the creating connection closes */

struct eng_limits {
	uint64_t memory_bytes;    /* 0 = engine default */
	uint32_t pids;            /* 0 = default */
	uint32_t cpus_milli;      /* 0 = no quota */
	uint32_t cell_timeout_ms; /* 0 = default */
	uint32_t max_cells;       /* 0 = unlimited */
	uint32_t idle_timeout_s;  /* 0 = default */
	uint32_t lifetime_s;      /* 0 = default */
	uint64_t tmp_bytes;       /* 0 = default */
	uint64_t output_bytes;    /* stdout+stderr forwarded per cell; the rest dropped; 0 = default */
	uint64_t file_size_bytes; /* RLIMIT_FSIZE; 0 = default */
};

struct eng_req_create {
	uint32_t mode;  /* enum eng_mode */
	uint32_t flags; /* ENG_CREATE_* */
	struct eng_limits limits;
	char name[ENG_NAME_MAX];       /* optional; unique among live sessions */
	char allow_imports[512];       /* "" = no allowlist; else comma-separated top-level names */
	uint32_t n_mounts;             /* trusted clients only; each: struct eng_mount */
	uint32_t want_output;          /* give the session an /output */
	/* extra environment for the session: "K=V\0K=V\0\0" (names [A-Za-z_][A-Za-z0-9_]*) */
	char env[4096];
};
struct eng_mount {
	char host[ENG_PATH_MAX];
	char dest[ENG_PATH_MAX];
	uint32_t writable;
};

/* Sizes of the main layouts travel with the version: a client and a daemon built from different
 * sources find out at connect time, not through a garbled request. */
struct eng_req_hello {
	uint32_t version;
	uint32_t size_create, size_final, size_info;
	int32_t daemon_pid; /* reply only (in ENG_RSP_OK's value) */
};
#define ENG_HELLO_INIT                                                                   	{ENG_WIRE_VERSION, sizeof(struct eng_req_create), sizeof(struct eng_final),      	 sizeof(struct eng_session_info), 0}

struct eng_req_session {
	uint64_t session;
};
struct eng_req_lifetime {
	uint64_t session;
	uint32_t lifetime_s; /* from now */
	uint32_t reserved;
};
struct eng_req_lookup {
	char name[ENG_NAME_MAX];
};

#define ENG_EXEC_SVG 0x1
/* The payload is a program to run in the session, not Python: struct eng_cmd_hdr, then
 * 1 + argc + envc NUL-terminated UTF-8 strings: the working directory ("" = the session's),
 * argv[0..argc-1] (argv[0] is looked up in PATH), then "NAME=value" entries added to the
 * session's environment.  Its output streams like a cell's; FINAL says how it ended: status
 * OK with exit_code (or signal) set when it ran to its end. */
#define ENG_EXEC_COMMAND 0x2
/* Asks for ENG_EV_ACCEPTED as soon as the cell is taken, before any of its events: the
 * first frame is then that or the refusal (busy, no session, ...), at once, so a client can
 * turn a refusal into a status of its own without guessing how long a silent cell takes. */
#define ENG_EXEC_ACK 0x4
#define ENG_CMD_ARGS_MAX 4096
#define ENG_CMD_ENV_MAX 256
struct eng_cmd_hdr {
	uint32_t argc; /* >= 1 */
	uint32_t envc;
};
struct eng_req_execute {
	uint64_t session;
	uint32_t timeout_ms; /* 0 = the session's cell timeout */
	uint32_t flags;      /* ENG_EXEC_* */
	char context[ENG_NAME_MAX];
	/* followed by the code (UTF-8), at most ENG_MAX_CODE bytes */
};
struct eng_req_ctx {
	uint64_t session;
	char context[ENG_NAME_MAX];
};
struct eng_req_file {
	uint64_t session;
	uint64_t size;            /* FILE_WRITE: total bytes that follow in DATA frames, or
				     ENG_SIZE_STREAM: DATA frames until an empty one */
	char path[ENG_PATH_MAX];  /* absolute inside the session: /tmp/..., /data/..., /output/... */
};
#define ENG_SIZE_STREAM UINT64_MAX
struct eng_req_collect {
	uint64_t session;
	char host_dir[ENG_PATH_MAX];
};

struct eng_rsp_ok {
	uint64_t value; /* bytes written, entries listed, ... */
};
struct eng_rsp_error {
	int32_t errnum;            /* positive errno */
	char message[256];
};
struct eng_rsp_created {
	uint64_t session;
	uint32_t mode;
	uint32_t pooled; /* 1: claimed from the warm pool */
	char python[32];
};
struct eng_rsp_file_info {
	uint64_t size;
};
struct eng_rsp_entry {
	uint32_t type; /* 1 file, 2 dir, 3 symlink, 4 other */
	uint32_t reserved;
	uint64_t size;
	int64_t mtime;
	/* followed by the name (or, for COLLECT, "path\0reason") */
};

enum eng_session_state { ENG_S_STARTING = 1, ENG_S_IDLE, ENG_S_BUSY, ENG_S_DEAD };

struct eng_session_info {
	uint64_t session;
	uint32_t state;
	uint32_t mode;
	uint64_t created_unix_ms, last_used_unix_ms, expires_unix_ms;
	uint64_t cells, cpu_us, memory_bytes, peak_memory_bytes;
	struct eng_limits limits;
	char name[ENG_NAME_MAX];
};

enum eng_final_status {
	ENG_F_OK = 0, ENG_F_ERROR, ENG_F_TIMEOUT, ENG_F_MEMORY_LIMIT, ENG_F_KILLED,
};
#define ENG_HIT_MEMORY 0x1 /* the memory limit was reached during the cell */
#define ENG_HIT_PIDS 0x2   /* the pids limit was reached (a fork failed) */
#define ENG_HIT_OUTPUT 0x4 /* output past the cap was dropped */
struct eng_final {
	uint32_t status;        /* enum eng_final_status */
	uint32_t session_alive; /* 0: the session is dead after this cell */
	int32_t exit_code;      /* KILLED, or a command: how its process ended (-1 none) */
	int32_t signal;
	uint32_t limits_hit;    /* ENG_HIT_* */
	uint32_t reserved;
	uint64_t duration_us, cpu_us, peak_memory_bytes;
	uint64_t cell;          /* 1-based cell number in the session */
	uint64_t stdout_bytes, stderr_bytes, dropped_bytes;
};

struct eng_stats {
	uint64_t sessions_live, sessions_created, sessions_destroyed, sessions_expired;
	uint64_t pool_ready, pool_target;
	uint64_t exec_ok, exec_error, exec_timeout, exec_memory_limit, exec_killed;
	uint64_t refused_capacity;
	uint64_t latency_buckets[12]; /* execute latency histogram, upper bounds in eng_latency_le_ms */
	uint64_t latency_count, latency_sum_us;
};
extern const double eng_latency_le_ms[12];

const char *eng_final_status_name(uint32_t s);

/* -- frame I/O ------------------------------------------------------------------------- */

/* Incremental reader for a non-blocking fd: collects one frame at a time, bounded. */
struct eng_frame_reader {
	struct eng_frame_hdr hdr;
	size_t hdr_got;
	struct cr_buf payload; /* capped at max */
	uint32_t max;
	bool ready;            /* a whole frame is in hdr/payload */
};
void eng_reader_init(struct eng_frame_reader *r, uint32_t max);
void eng_reader_free(struct eng_frame_reader *r);
/* Reads what is available. Returns 1 when a frame is ready, 0 for "need more" (EAGAIN),
 * -EPIPE on EOF, -E2BIG when the peer announces an oversized frame, -errno otherwise. */
int eng_reader_feed(struct eng_frame_reader *r, int fd);
void eng_reader_next(struct eng_frame_reader *r);

/* Appends one frame to an output buffer (bounded; -E2BIG if it does not fit). */
int eng_frame_put(struct cr_buf *out, uint32_t type, const void *p, size_t n);
int eng_frame_put2(struct cr_buf *out, uint32_t type, const void *a, size_t an, const void *b,
		   size_t bn);
/* Blocking helpers for simple peers (client library, zygote). */
int eng_frame_write(int fd, uint32_t type, const void *p, size_t n);
int eng_frame_write2(int fd, uint32_t type, const void *a, size_t an, const void *b, size_t bn);
/* Reads one whole frame into *out (bounded by max); returns payload length or -errno. */
int eng_frame_read(int fd, struct eng_frame_hdr *hdr, struct cr_buf *out, uint32_t max);

#endif
