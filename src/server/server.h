/* server/server.h -- `corral serve`: sandboxes over HTTP, the unprivileged front half.
 *
 * Process model (cli/ext/cmd_serve.c): a privileged parent runs the engine manager; the HTTP
 * front is a forked child that binds its TCP socket, reads its API keys, drops every privilege
 * and only then parses a request (libmicrohttpd).  It reaches the manager over a unix socket as
 * an *untrusted* engine client: no host mounts, no collect.
 *
 *   struct srv_config cfg; srv_config_init(&cfg);
 *   bool loopback;
 *   cfg.listen_fd = srv_listen_tcp("127.0.0.1:7070", &loopback, &err);  // as root
 *   srv_keys_load(&cfg.keys, "/etc/corral/api-keys", &err);              // as root
 *   cfg.engine_socket = "/run/corral/serve-123/engine.sock";
 *   ... drop privileges ...
 *   srv_run(&cfg, &err);            // serves until SIGTERM/SIGINT; never exits the process
 *
 * Route families (the native v1 API; E2B's control plane, envd and code interpreter) each live
 * in one file and export a route table (server/srv_internal.h); srv_print_routes lists them.
 * The config and the keys are borrowed by srv_run for its whole duration.
 */
#ifndef CORRAL_SERVER_SERVER_H
#define CORRAL_SERVER_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/err.h"

#define SRV_KEYS_MAX 1024      /* keys in one --api-keys file */
#define SRV_KEY_MIN 16         /* shortest key accepted (bytes) */
#define SRV_KEY_MAX 256        /* longest key accepted (bytes) */
#define SRV_KEYFILE_MAX (1u << 20)

struct srv_key {
	char *key;
	size_t len;
	bool e2b; /* "e2b_<hex>": also valid as X-API-KEY on the E2B surface */
};
struct srv_keys {
	struct srv_key *v;
	size_t n;
};

struct srv_config {
	int listen_fd;               /* bound and listening TCP socket */
	const char *engine_socket;   /* the manager's unix socket */
	struct srv_keys keys;        /* at least one */
	unsigned max_sandboxes;      /* sizes the id map (the engine enforces the limit) */
	unsigned max_connections;    /* open HTTP connections (default 512) */
	unsigned per_ip_connections; /* per client address (default 256) */
	unsigned idle_timeout_s;     /* a connection with no traffic is closed (default 30) */
	unsigned header_timeout_s;   /* a new connection's first request head (default 10) */
	uint64_t max_json_bytes;     /* JSON request bodies (default 2 MiB) */
	uint64_t max_upload_bytes;   /* PUT of a file (default 256 MiB) */
	uint64_t max_download_bytes; /* GET of a file (default 256 MiB) */
	bool log_requests;           /* one JSON line per request on stderr (default on) */
	int ready_fd;                /* >= 0: "ok\n" is written once serving, then closed */
};
void srv_config_init(struct srv_config *c);

/* Parses "HOST:PORT" / "[V6]:PORT" / ":PORT" (numeric addresses only), binds and listens.
 * *loopback says whether the address is a loopback one.  Returns the fd or -errno. */
int srv_listen_tcp(const char *spec, bool *loopback, struct cr_err *err);

/* API keys: one per line, '#' comments and blank lines ignored, surrounding blanks trimmed.
 * Refuses a file that others can read or write (chmod 600). */
int srv_keys_load(struct srv_keys *k, const char *path, struct cr_err *err);
int srv_keys_add(struct srv_keys *k, const char *key, size_t len, struct cr_err *err);
void srv_keys_free(struct srv_keys *k);
/* Writes a fresh random "e2b_" + 32 hex key (37 bytes with the NUL) into out. */
int srv_key_generate(char *out, size_t n, struct cr_err *err);

/* Serves HTTP on cfg->listen_fd until SIGTERM or SIGINT.  Blocks those signals in the calling
 * thread (and so in every thread it starts). */
int srv_run(const struct srv_config *cfg, struct cr_err *err);

/* One line per route: "METHOD PATTERN FAMILY" (what `corral serve --print-routes` prints);
 * families: native, e2b, envd, interpreter. */
void srv_print_routes(FILE *f);

#endif
