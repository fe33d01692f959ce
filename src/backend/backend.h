/* backend/backend.h -- the four-call interface the agent sees: create, execute, upload_file,
 * download_file, cleanup -- behind one handle, whatever runs the code.
 *
 *   struct bk_opts o; bk_opts_init(&o);
 *   o.mode = BK_STATEFUL; o.data_files[0] = "/srv/sales.csv"; o.n_data_files = 1;
 *   struct bk *b;
 *   bk_create_native(&o, &b, &err);                         // local engine daemon
 *   // or bk_create_remote("http://127.0.0.1:7070", key, &o, &b, &err);  // a corral server
 *   struct bk_result r; bk_result_init(&r);
 *   bk_execute(b, "print(1)", 0, &r, &err);                 // aggregated, capped
 *   ... r.status, r.out.data, r.events (JSON array of display/result/error events) ...
 *   bk_result_free(&r);
 *   bk_cleanup(b);                                          // destroys the sandbox, frees b
 *
 * Data files appear read-only (native: bind mounts) or as uploaded copies (remote) under
 * /data/<basename>.  Results are bounded: stdout and stderr keep at most BK_STREAM_MAX bytes
 * each (the rest counted in .dropped), events at most BK_EVENTS_MAX bytes in total.
 * A handle is used by one thread at a time.  The api key is borrowed and never logged.
 */
#ifndef CORRAL_BACKEND_BACKEND_H
#define CORRAL_BACKEND_BACKEND_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

#define BK_MAX_DATA_FILES 16
#define BK_STREAM_MAX (1u << 20)
#define BK_EVENTS_MAX (64u << 20)

enum bk_mode { BK_STATEFUL = 0, BK_STATELESS = 1 };

struct bk_opts {
	enum bk_mode mode;
	uint64_t memory_bytes;   /* 0 = backend default */
	uint32_t pids;
	uint32_t cpus_milli;
	uint32_t cell_timeout_ms;
	uint32_t lifetime_s;
	const char *data_files[BK_MAX_DATA_FILES]; /* host paths, borrowed */
	/* Optional (-1 = none, the bk_opts_init default): a read-only descriptor of data_files[i]
	 * opened by the caller, e.g. before it dropped privileges (borrowed, never closed here).
	 * The remote backend uploads from it; the native backend then takes data_files[i] as
	 * already canonical (the caller's realpath) instead of resolving it again, which would
	 * need search permission on every directory above it. */
	int data_fds[BK_MAX_DATA_FILES];
	/* Optional: the name under /data/ (NULL = the basename of data_files[i]), e.g. the name
	 * the user gave when data_files[i] is the target of a symlink.  One path component. */
	const char *data_names[BK_MAX_DATA_FILES];
	size_t n_data_files;
	const char *allow_imports;                 /* comma-separated, or NULL */
};
void bk_opts_init(struct bk_opts *o);

enum bk_status { BK_OK = 0, BK_ERROR, BK_TIMEOUT, BK_MEMORY_LIMIT, BK_KILLED };
const char *bk_status_name(enum bk_status s);

struct bk_result {
	enum bk_status status;
	bool session_alive;
	struct cr_buf out, err;  /* capped stdout / stderr */
	json_t *events;          /* array of the session's display/result/error events, in order */
	uint64_t duration_us, cpu_us, peak_memory_bytes;
};
void bk_result_init(struct bk_result *r);
void bk_result_free(struct bk_result *r);

struct bk;

int bk_create_native(const struct bk_opts *o, struct bk **out, struct cr_err *err);
int bk_create_remote(const char *base_url, const char *api_key, const struct bk_opts *o,
		     struct bk **out, struct cr_err *err);
/* Checks a corral server URL (http(s)://host[:port][/prefix]) without connecting: 0 | -EINVAL. */
int bk_remote_url_check(const char *base_url, struct cr_err *err);
int bk_execute(struct bk *b, const char *code, uint32_t timeout_ms, struct bk_result *r,
	       struct cr_err *err);
int bk_upload_file(struct bk *b, const char *remote_path, const void *data, size_t len,
		   struct cr_err *err);
int bk_download_file(struct bk *b, const char *remote_path, struct cr_buf *out,
		     struct cr_err *err);
void bk_cleanup(struct bk *b);
/* Where the backend runs code, for reports: "local engine", "http://host:port". */
const char *bk_describe(const struct bk *b);

/* For implementations: the vtable each backend fills in. */
struct bk_ops {
	int (*execute)(struct bk *b, const char *code, uint32_t timeout_ms, struct bk_result *r,
		       struct cr_err *err);
	int (*upload)(struct bk *b, const char *path, const void *data, size_t len,
		      struct cr_err *err);
	int (*download)(struct bk *b, const char *path, struct cr_buf *out, struct cr_err *err);
	void (*cleanup)(struct bk *b);
};
struct bk {
	const struct bk_ops *ops;
	char describe[128];
	void *impl;
};
/* Appends one runner event (JSON text) to r->events, within BK_EVENTS_MAX. */
int bk_result_add_event(struct bk_result *r, const char *json, size_t len);

#endif
