/* cli/ext/cmd_serve.c -- `corral serve`: sandboxes over HTTP.
 *
 * Process model ("privileged code stays small; nothing that parses HTTP, JSON or model output
 * runs with privileges"):
 *
 *   corral serve (root) ── the engine manager: zygote, warm pool, sessions, cgroups
 *     │   creates <runtime>/<pid>/ (0711) and the engine socket in it (owned by nobody, 0600),
 *     │   sweeps the directories of dead predecessors, forks the front, then runs the manager
 *     │   with untrusted_pid = the front and watch_pidfd = the front (it stops when the front
 *     │   dies).  On SIGTERM the manager destroys every session; then the front is stopped
 *     │   and the runtime directory removed.
 *     └── the HTTP front (PDEATHSIG: dies with the manager): binds the TCP socket and reads the
 *         API keys while still root, drops to nobody (no groups, no capabilities,
 *         no_new_privs, environment wiped) and only then serves HTTP (server/server.h).  The
 *         manager accepts it by pid as an *untrusted* client: no host mounts, no collect.
 *
 * A SIGKILLed instance leaves cgroups (swept by the next manager) and its runtime directory
 * (swept here, by pid and start time); its processes die with it (PDEATHSIG everywhere).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/parse.h"
#include "engine/engine.h"
#include "sandbox/cgroup.h"
#include "server/server.h"

#define NOBODY 65534

int corral_ext_serve(int argc, char **argv);

extern char **environ;

static const char USAGE[] =
	"usage: corral serve [--listen HOST:PORT] [--api-keys FILE] [OPTIONS]\n"
	"\n"
	"Serves sandboxes over HTTP: the native API v1 and an E2B-compatible one that the\n"
	"official E2B SDKs use unchanged (docs/API.md).  Runs as root; the HTTP front drops to\n"
	"nobody before it reads a request.\n"
	"\n"
	"  --listen HOST:PORT     address to listen on (default 127.0.0.1:7070; numeric)\n"
	"  --api-keys FILE        API keys, one per line (# comments); chmod 600.  Required for a\n"
	"                         non-loopback address.  Without it a key is generated and printed\n"
	"  --max-sandboxes N      live sandboxes at most (default 64); more get 429\n"
	"  --warm N               contained sessions kept ready (default 2)\n"
	"  --memory SIZE --pids N --cpus F   default sandbox limits (512M, 64, none)\n"
	"  --cell-timeout DUR     default per-cell timeout (30s)\n"
	"  --timeout DUR          default sandbox lifetime (1h; clients may ask up to 7 days)\n"
	"  --idle-timeout DUR     a sandbox unused this long is destroyed (10m)\n"
	"  --max-upload SIZE      largest file upload or download (256M)\n"
	"  --max-connections N    open HTTP connections (512); --per-ip N (256)\n"
	"  --header-timeout DUR   a connection must send its request head within (10s)\n"
	"  --runtime-dir DIR      where the engine socket lives (default /run/corral-serve)\n"
	"  --quiet                no request log lines\n"
	"  --print-routes         print every route served and exit\n";

struct serve_opts {
	const char *listen, *keys_file, *runtime;
	struct srv_config srv;
	struct eng_config eng;
};

static int parse_args(int argc, char **argv, struct serve_opts *o, bool *print_routes)
{
	enum { O_LISTEN = 400, O_KEYS, O_MAX, O_WARM, O_MEMORY, O_PIDS, O_CPUS, O_CELL, O_TIMEOUT,
	       O_IDLE, O_UPLOAD, O_CONNS, O_HEADER, O_PER_IP, O_RUNTIME, O_QUIET, O_ROUTES, O_HELP };
	static const struct option opts[] = {
		{"listen", required_argument, NULL, O_LISTEN},
		{"api-keys", required_argument, NULL, O_KEYS},
		{"max-sandboxes", required_argument, NULL, O_MAX},
		{"warm", required_argument, NULL, O_WARM},
		{"memory", required_argument, NULL, O_MEMORY},
		{"pids", required_argument, NULL, O_PIDS},
		{"cpus", required_argument, NULL, O_CPUS},
		{"cell-timeout", required_argument, NULL, O_CELL},
		{"timeout", required_argument, NULL, O_TIMEOUT},
		{"idle-timeout", required_argument, NULL, O_IDLE},
		{"max-upload", required_argument, NULL, O_UPLOAD},
		{"max-connections", required_argument, NULL, O_CONNS},
		{"per-ip", required_argument, NULL, O_PER_IP},
		{"header-timeout", required_argument, NULL, O_HEADER},
		{"runtime-dir", required_argument, NULL, O_RUNTIME},
		{"quiet", no_argument, NULL, O_QUIET},
		{"print-routes", no_argument, NULL, O_ROUTES},
		{"help", no_argument, NULL, O_HELP},
		{0},
	};
	struct cr_err err = {0};
	uint64_t v;
	double d;
	int c;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case O_LISTEN: o->listen = optarg; break;
		case O_KEYS: o->keys_file = optarg; break;
		case O_RUNTIME: o->runtime = optarg; break;
		case O_QUIET: o->srv.log_requests = false; break;
		case O_ROUTES: *print_routes = true; break;
		case O_HELP: fputs(USAGE, stdout); return -1;
		case O_MAX:
			if (cr_parse_uint(optarg, 1, 4096, &v, &err) < 0)
				return cli_usage_error("--max-sandboxes: %s", err.msg);
			o->eng.max_sessions = o->srv.max_sandboxes = (unsigned)v;
			break;
		case O_WARM:
			if (cr_parse_uint(optarg, 0, 256, &v, &err) < 0)
				return cli_usage_error("--warm: %s", err.msg);
			o->eng.pool_size = (unsigned)v;
			break;
		case O_MEMORY:
			if (cr_parse_size(optarg, &v, &err) < 0 || v < (16u << 20))
				return cli_usage_error("--memory: %s", err.code ? err.msg : "at least 16M");
			o->eng.limits.memory_bytes = v;
			break;
		case O_PIDS:
			if (cr_parse_uint(optarg, 8, 65536, &v, &err) < 0)
				return cli_usage_error("--pids: %s", err.msg);
			o->eng.limits.pids = (uint32_t)v;
			break;
		case O_CPUS:
			if (cr_parse_double(optarg, 0.01, 1024, &d, &err) < 0)
				return cli_usage_error("--cpus: %s", err.msg);
			o->eng.limits.cpus_milli = (uint32_t)(d * 1000);
			break;
		case O_HEADER:
			if (cr_parse_duration(optarg, &v, &err) < 0 || v < 1000 || v > 3600 * 1000)
				return cli_usage_error("--header-timeout: %s",
						       err.code ? err.msg : "between 1s and 1h");
			o->srv.header_timeout_s = (unsigned)(v / 1000);
			break;
		case O_CELL:
		case O_TIMEOUT:
		case O_IDLE:
			if (cr_parse_duration(optarg, &v, &err) < 0 || v < 1000 ||
			    v > 7ULL * 86400 * 1000)
				return cli_usage_error("%s: %s", argv[optind - 1],
						       err.code ? err.msg : "between 1s and 7 days");
			if (c == O_CELL)
				o->eng.limits.cell_timeout_ms = (uint32_t)v;
			else if (c == O_TIMEOUT)
				o->eng.limits.lifetime_s = (uint32_t)(v / 1000);
			else
				o->eng.limits.idle_timeout_s = (uint32_t)(v / 1000);
			break;
		case O_UPLOAD:
			if (cr_parse_size(optarg, &v, &err) < 0 || v > (1ULL << 30))
				return cli_usage_error("--max-upload: %s", err.code ? err.msg : "at most 1G");
			o->srv.max_upload_bytes = o->srv.max_download_bytes = v;
			break;
		case O_CONNS:
		case O_PER_IP:
			if (cr_parse_uint(optarg, 1, 10000, &v, &err) < 0)
				return cli_usage_error("%s: %s", argv[optind - 1], err.msg);
			if (c == O_CONNS)
				o->srv.max_connections = (unsigned)v;
			else
				o->srv.per_ip_connections = (unsigned)v;
			break;
		default:
			return cli_usage_error("serve: unknown or incomplete option '%s' (see corral "
					       "serve --help)", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error("serve: unexpected argument '%s'", argv[optind]);
	return 0;
}

/* -- the runtime directory --------------------------------------------------------------- */

/* Field 22 of /proc/<pid>/stat (the command may hold spaces and parentheses). */
static unsigned long long start_time(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	for (int field = 2; p && field < 22; field++)
		p = strchr(p + 1, ' ');
	return p ? strtoull(p + 1, NULL, 10) : 0;
}

static void remove_instance_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			unlinkat(dirfd(d), e->d_name, 0);
	if (d)
		closedir(d);
	rmdir(dir);
}

/* Removes <base>/<pid> directories whose instance is gone (pid dead, or reused: the start
 * time recorded in <dir>/owner differs). */
static void sweep_stale(const char *base)
{
	DIR *d = opendir(base);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		if (*end || pid <= 0 || pid == getpid())
			continue;
		char dir[PATH_MAX], owner[PATH_MAX + 8], buf[32] = "";
		snprintf(dir, sizeof dir, "%s/%s", base, e->d_name);
		snprintf(owner, sizeof owner, "%s/owner", dir);
		int fd = open(owner, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd >= 0) {
			ssize_t n = read(fd, buf, sizeof buf - 1);
			buf[n > 0 ? n : 0] = '\0';
			close(fd);
		}
		unsigned long long now = start_time((pid_t)pid);
		if (now == 0 || now != strtoull(buf, NULL, 10))
			remove_instance_dir(dir);
	}
	if (d)
		closedir(d);
}

static int make_runtime(const char *base, char *dir, size_t n, struct cr_err *err)
{
	if (mkdir(base, 0711) < 0 && errno != EEXIST)
		return cr_fail(err, errno, "mkdir %s", base);
	struct stat st;
	if (lstat(base, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & 022))
		return cr_failx(err, EPERM, "%s must be a directory owned by root, not writable by "
				"others", base);
	chmod(base, 0711); /* the front (nobody) must be able to reach its socket below */
	sweep_stale(base);
	snprintf(dir, n, "%s/%d", base, (int)getpid());
	remove_instance_dir(dir);
	if (mkdir(dir, 0711) < 0)
		return cr_fail(err, errno, "mkdir %s", dir);
	char owner[PATH_MAX + 8], buf[32];
	snprintf(owner, sizeof owner, "%s/owner", dir);
	int fd = open(owner, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return cr_fail(err, errno, "%s", owner);
	int l = snprintf(buf, sizeof buf, "%llu\n", start_time(getpid()));
	(void)!write(fd, buf, (size_t)l);
	close(fd);
	return 0;
}

/* Removes the cgroups of this instance's sessions.  The manager returns from its shutdown as
 * soon as no session counts as live, which can be before the killed sessions are reaped and
 * their cgroups removed; what it left is removed here (the next instance would sweep it too,
 * but a graceful stop should leave nothing). */
static void remove_own_cgroups(void)
{
	struct sbx_cg_host host;
	if (sbx_cg_detect(NULL, NULL, getenv("CORRAL_CGROUP_PARENT"), &host, NULL) < 0 ||
	    host.mode == SBX_CG_NONE)
		return;
	char prefix[32];
	snprintf(prefix, sizeof prefix, "%d.", (int)getpid());
	const char *parents[] = {host.v2_parent, host.v1_memory, host.v1_pids, host.v1_cpu,
				 host.v1_cpuacct};
	for (size_t i = 0; i < sizeof parents / sizeof *parents; i++) {
		if (!parents[i][0] || (i == 0) != (host.mode == SBX_CG_V2))
			continue;
		DIR *d = opendir(parents[i]);
		struct dirent *e;
		while (d && (e = readdir(d))) {
			if (strncmp(e->d_name, prefix, strlen(prefix)))
				continue;
			struct sbx_cg cg;
			sbx_cg_init(&cg);
			cg.mode = host.mode;
			cg.created = true;
			char *dst = host.mode == SBX_CG_V2 ? cg.v2_dir
				  : i == 1 ? cg.v1_memory : i == 2 ? cg.v1_pids
				  : i == 3 ? cg.v1_cpu : cg.v1_cpuacct;
			if (snprintf(dst, SBX_CG_PATH_MAX, "%s/%s", parents[i], e->d_name) <
			    SBX_CG_PATH_MAX)
				sbx_cg_destroy(&cg);
		}
		if (d)
			closedir(d);
	}
}

/* -- the front --------------------------------------------------------------------------- */

static int drop_to_nobody(void)
{
	for (int cap = 0; cap <= 63; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno == EINVAL)
			break;
	if (setgroups(0, NULL) < 0 || setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
	    setresuid(NOBODY, NOBODY, NOBODY) < 0)
		return -errno;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	if (setuid(0) == 0) /* a drop that can be undone is no drop */
		return -EPERM;
	return 0;
}

static void front_fail(int ready_w, const char *msg)
{
	dprintf(ready_w, "%s\n", msg);
	_exit(1);
}

static void front_main(struct serve_opts *o, const char *gen_key, int engine_lfd, int ready_w,
		       pid_t parent)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	close(engine_lfd);
	struct cr_err err = {0};
	bool loopback = false;
	o->srv.listen_fd = srv_listen_tcp(o->listen, &loopback, &err);
	if (o->srv.listen_fd < 0)
		front_fail(ready_w, err.msg);
	if (!loopback && !o->keys_file)
		front_fail(ready_w, "refusing to listen on a non-loopback address without --api-keys "
			   "FILE");
	int r = o->keys_file ? srv_keys_load(&o->srv.keys, o->keys_file, &err)
			     : srv_keys_add(&o->srv.keys, gen_key, strlen(gen_key), &err);
	if (r < 0)
		front_fail(ready_w, err.msg);
	/* room for every HTTP connection plus its engine connection */
	struct rlimit rl = {8192, 8192};
	setrlimit(RLIMIT_NOFILE, &rl);
	/* nothing of the caller's environment stays in a network-facing process */
	for (char **e = environ; e && *e; e++)
		explicit_bzero(*e, strlen(*e));
	clearenv();
	if ((r = drop_to_nobody()) < 0) {
		cr_fail(&err, -r, "cannot drop privileges");
		front_fail(ready_w, err.msg);
	}
	/* the kernel clears the parent-death signal when credentials change: set it again */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	/* as nobody, can we reach the engine at all?  (every directory above it needs o+x; a
	 * bare connect: the manager only answers once this front has said it is ready) */
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", o->srv.engine_socket);
	int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe < 0 || connect(probe, (struct sockaddr *)&sa, sizeof sa) < 0)
		front_fail(ready_w, errno == EACCES
					    ? "the HTTP front (uid nobody) cannot reach the engine socket: "
					      "make the directories above --runtime-dir searchable (chmod o+x)"
					    : "the HTTP front cannot connect to the engine socket");
	close(probe);
	o->srv.ready_fd = ready_w;
	if (srv_run(&o->srv, &err) < 0)
		front_fail(ready_w, err.msg);
	_exit(0);
}

/* Reads the front's first words: "ok" or why it could not start. */
static int wait_ready(int ready_r, char *msg, size_t n)
{
	size_t got = 0;
	while (got < n - 1) {
		struct pollfd p = {.fd = ready_r, .events = POLLIN};
		if (poll(&p, 1, 30000) <= 0)
			break;
		ssize_t k = read(ready_r, msg + got, n - 1 - got);
		if (k <= 0)
			break;
		got += (size_t)k;
		if (memchr(msg, '\n', got))
			break;
	}
	msg[got] = '\0';
	char *nl = strchr(msg, '\n');
	if (nl)
		*nl = '\0';
	return strcmp(msg, "ok") ? -1 : 0;
}

static void stop_front(pid_t pid)
{
	kill(pid, SIGTERM);
	for (int i = 0; i < 50; i++) {
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return;
		usleep(100 * 1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static int serve(struct serve_opts *o)
{
	struct cr_err err = {0};
	char zyg[PATH_MAX + 32];
	snprintf(zyg, sizeof zyg, "%s/corral-zygote", cli_self_dir());
	if (access(zyg, X_OK) < 0)
		return cli_usage_error("cannot find corral-zygote next to the corral binary (%s)", zyg);
	char dir[PATH_MAX], sock[PATH_MAX + 16], keyfile[PATH_MAX + 16];
	if (make_runtime(o->runtime, dir, sizeof dir, &err) < 0)
		return cli_usage_error("%s", err.msg);
	snprintf(sock, sizeof sock, "%s/engine.sock", dir);
	int lfd = eng_listen_unix(sock, &err);
	if (lfd < 0 || chown(sock, NOBODY, NOBODY) < 0) {
		remove_instance_dir(dir);
		return cli_usage_error("%s", lfd < 0 ? err.msg : "cannot hand the engine socket over");
	}
	char key[64] = "";
	if (!o->keys_file) {
		snprintf(keyfile, sizeof keyfile, "%s/api-key", dir);
		int fd = srv_key_generate(key, sizeof key, &err) < 0
				 ? -1 : open(keyfile, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 || dprintf(fd, "%s\n", key) < 0) {
			remove_instance_dir(dir);
			return cli_usage_error("cannot create an API key in %s", keyfile);
		}
		close(fd);
	}
	o->srv.engine_socket = sock;
	/* signals wait (blocked, then read by the manager's signalfd) from here on */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	int ready[2];
	if (pipe2(ready, O_CLOEXEC) < 0) {
		remove_instance_dir(dir);
		return cli_usage_error("pipe: %s", strerror(errno));
	}
	fflush(NULL);
	pid_t parent = getpid();
	pid_t front = fork();
	if (front == 0) {
		close(ready[0]);
		front_main(o, key, lfd, ready[1], parent);
	}
	close(ready[1]);
	char msg[512];
	int rc = 0;
	if (front < 0 || wait_ready(ready[0], msg, sizeof msg) < 0) {
		fprintf(stderr, "corral: serve: %s\n", front < 0 ? strerror(errno) :
				msg[0] ? msg : "the HTTP front did not start");
		rc = CLI_EXIT_USAGE;
	}
	close(ready[0]);
	int pidfd = rc ? -1 : (int)syscall(SYS_pidfd_open, front, 0);
	if (rc == 0 && pidfd < 0) {
		fprintf(stderr, "corral: serve: pidfd_open: %s\n", strerror(errno));
		rc = CLI_EXIT_USAGE;
	}
	if (rc == 0) {
		fprintf(stderr, "corral: serving on http://%s (API: docs/API.md; front pid %d)\n",
			o->listen, (int)front);
		if (key[0])
			fprintf(stderr, "corral: API key for this run (also in %s): %s\n", keyfile, key);
		explicit_bzero(key, sizeof key);
		o->eng.zygote_path = zyg;
		o->eng.untrusted_pid = front;
		o->eng.watch_pidfd = pidfd;
		if (eng_manager_run(&o->eng, lfd, &err) < 0) {
			fprintf(stderr, "corral: serve: engine: %s\n", err.msg);
			rc = 1;
		}
		int st = 0;
		if (waitpid(front, &st, WNOHANG) == front && !(WIFEXITED(st) && !WEXITSTATUS(st))) {
			fprintf(stderr, "corral: serve: the HTTP front ended unexpectedly\n");
			rc = 1;
		}
	}
	if (front > 0)
		stop_front(front);
	remove_own_cgroups();
	if (pidfd >= 0)
		close(pidfd);
	close(lfd);
	remove_instance_dir(dir);
	return rc;
}

int corral_ext_serve(int argc, char **argv)
{
	struct serve_opts o;
	memset(&o, 0, sizeof o);
	o.listen = "127.0.0.1:7070";
	o.runtime = "/run/corral-serve";
	srv_config_init(&o.srv);
	eng_config_init(&o.eng);
	o.eng.max_sessions = o.srv.max_sandboxes;
	bool print_routes = false;
	int r = parse_args(argc, argv, &o, &print_routes);
	if (r != 0)
		return r < 0 ? 0 : r;
	if (print_routes) {
		srv_print_routes(stdout);
		return 0;
	}
	if (geteuid() != 0)
		return cli_usage_error("serve: run as root (the engine needs it; the HTTP front "
				       "drops to nobody itself)");
	return serve(&o);
}
