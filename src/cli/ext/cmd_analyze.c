/* cli/ext/cmd_analyze.c -- `corral analyze DATA... [-q QUESTION] [-o report.html]`.
 *
 * Privilege separation: this process (often root) does only trusted work -- it reads the
 * command line, the key and the brand file, checks the data files, connects to the engine
 * (trusted: host mounts for the data), and opens the output and trace files.  Then it forks:
 * the child drops to nobody with no_new_privs before it talks to the model or reads anything
 * the sandbox produced, runs the agent, and writes the rendered report into the file we
 * opened.  The parent moves the finished file into place, or removes it.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "backend/backend.h"
#include "cli/cli.h"
#include "cli/engine_daemon.h"
#include "core/parse.h"

int corral_ext_analyze(int argc, char **argv);

static const char USAGE[] =
	"usage: corral analyze DATA [DATA...] [-q QUESTION] [-o report.html] [OPTIONS]\n"
	"\n"
	"An agent on the host has a model write Python, runs it in a corral sandbox, and writes\n"
	"one self-contained HTML report.  Without --provider, the built-in offline analyst does a\n"
	"standard analysis (no account needed).\n"
	"\n"
	"  -q, --question TEXT    what to find out\n"
	"  -o, --output FILE      the report (default report.html)\n"
	"  --provider NAME        offline (default), openai, anthropic\n"
	"  --model NAME           e.g. gpt-5-mini, claude-sonnet-4-5 (defaults per provider)\n"
	"  --base-url URL         an OpenAI-compatible server (Ollama, vLLM, llama.cpp ...)\n"
	"  --key-file FILE        the API key, if not in OPENAI_API_KEY / ANTHROPIC_API_KEY\n"
	"                         (first line; the file must be chmod 600)\n"
	"  --model-timeout DURATION  one model request, before it is retried (default 10m)\n"
	"  --max-steps N          model calls (default 20)\n"
	"  --max-tokens N         prompt + completion tokens over the run\n"
	"  --max-cost USD         stop spending at this estimate\n"
	"  --trace FILE.jsonl     every model call and execution, one JSON object a line\n"
	"  --sandbox local|URL    the local engine (default) or a corral server: the data files\n"
	"                         are uploaded to it; its key comes from CORRAL_API_KEY\n"
	"  --stateless            nothing persists between the model's code runs\n"
	"  --brand FILE           name, logo and colours for the report (docs/REPORT.md)\n"
	"  --title TEXT           the report's title\n"
	"  --cell-timeout DURATION  per code run (default 120s)\n"
	"  --memory SIZE          the sandbox's memory limit (default 1G)\n"
	"\n"
	"Keys come from the environment or --key-file, never from the command line (the\n"
	"environment wins when both are set).  Progress goes to stderr; docs/LLM.md describes the\n"
	"trace and the summary line.\n"
	"Exit status: 0 report written, 2 partial report written (a budget ran out), 1 failed,\n"
	"125 bad input.\n";

static struct eng_client *preconnected;

static struct eng_client *give_preconnected(struct cr_err *err)
{
	struct eng_client *c = preconnected;
	preconnected = NULL;
	if (!c)
		cr_failx(err, EIO, "no engine connection");
	return c;
}
extern struct eng_client *(*bk_native_connect)(struct cr_err *err);

static volatile sig_atomic_t cancelled;
static void on_signal(int sig)
{
	(void)sig;
	cancelled = 1;
}

static int drop_privileges(void)
{
	if (geteuid() == 0 && (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
			       setresuid(65534, 65534, 65534) < 0))
		return -1;
	return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

struct opts {
	const char *files[AGENT_MAX_FILES];
	size_t n_files;
	/* Resolved and opened here, as the invoking user, before the child drops privileges:
	 * a file under a directory only root may search (/root) still reaches the sandbox. */
	char *real[AGENT_MAX_FILES];
	int fds[AGENT_MAX_FILES];
	uint64_t sizes[AGENT_MAX_FILES];
	const char *question, *output, *provider, *model, *base_url, *key_file, *trace, *sandbox;
	const char *brand, *title;
	unsigned max_steps;
	uint64_t max_tokens, memory, cell_timeout_ms, model_timeout_ms;
	double max_cost;
	bool stateless;
};

static int parse(int argc, char **argv, struct opts *o)
{
	enum { O_PROVIDER = 400, O_MODEL, O_BASE, O_KEYFILE, O_STEPS, O_TOKENS, O_COST, O_TRACE,
	       O_SANDBOX, O_STATELESS, O_BRAND, O_TITLE, O_CELL, O_MEMORY, O_MODEL_TIMEOUT, O_HELP };
	static const struct option opts[] = {
		{"question", required_argument, NULL, 'q'}, {"output", required_argument, NULL, 'o'},
		{"provider", required_argument, NULL, O_PROVIDER}, {"model", required_argument, NULL, O_MODEL},
		{"base-url", required_argument, NULL, O_BASE}, {"key-file", required_argument, NULL, O_KEYFILE},
		{"max-steps", required_argument, NULL, O_STEPS}, {"max-tokens", required_argument, NULL, O_TOKENS},
		{"max-cost", required_argument, NULL, O_COST}, {"trace", required_argument, NULL, O_TRACE},
		{"sandbox", required_argument, NULL, O_SANDBOX}, {"stateless", no_argument, NULL, O_STATELESS},
		{"brand", required_argument, NULL, O_BRAND}, {"title", required_argument, NULL, O_TITLE},
		{"cell-timeout", required_argument, NULL, O_CELL}, {"memory", required_argument, NULL, O_MEMORY},
		{"model-timeout", required_argument, NULL, O_MODEL_TIMEOUT},
		{"help", no_argument, NULL, O_HELP}, {0},
	};
	memset(o, 0, sizeof *o);
	for (size_t i = 0; i < AGENT_MAX_FILES; i++)
		o->fds[i] = -1;
	o->output = "report.html";
	o->provider = getenv("CORRAL_PROVIDER");
	o->max_steps = 20;
	o->memory = 1ULL << 30;
	o->cell_timeout_ms = 120000;
	o->model_timeout_ms = 600000;
	struct cr_err err = {0};
	uint64_t v;
	int c;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "q:o:", opts, NULL)) != -1) {
		switch (c) {
		case 'q': o->question = optarg; break;
		case 'o': o->output = optarg; break;
		case O_PROVIDER: o->provider = optarg; break;
		case O_MODEL: o->model = optarg; break;
		case O_BASE: o->base_url = optarg; break;
		case O_KEYFILE: o->key_file = optarg; break;
		case O_STEPS:
			if (cr_parse_uint(optarg, 1, 1000, &v, &err) < 0)
				return cli_usage_error("--max-steps: %s", err.msg);
			o->max_steps = (unsigned)v;
			break;
		case O_TOKENS:
			if (cr_parse_uint(optarg, 1000, UINT64_MAX / 2, &v, &err) < 0)
				return cli_usage_error("--max-tokens: %s", err.msg);
			o->max_tokens = v;
			break;
		case O_COST:
			if (cr_parse_double(optarg, 0.0001, 1e6, &o->max_cost, &err) < 0)
				return cli_usage_error("--max-cost: %s", err.msg);
			break;
		case O_TRACE: o->trace = optarg; break;
		case O_SANDBOX: o->sandbox = optarg; break;
		case O_STATELESS: o->stateless = true; break;
		case O_BRAND: o->brand = optarg; break;
		case O_TITLE: o->title = optarg; break;
		case O_CELL:
			if (cr_parse_duration(optarg, &v, &err) < 0 || v < 1000 || v > 3600000)
				return cli_usage_error("--cell-timeout: %s", err.code ? err.msg : "1s to 1h");
			o->cell_timeout_ms = v;
			break;
		case O_MODEL_TIMEOUT:
			if (cr_parse_duration(optarg, &v, &err) < 0 || v < 100 || v > 3600000)
				return cli_usage_error("--model-timeout: %s", err.code ? err.msg : "100ms to 1h");
			o->model_timeout_ms = v;
			break;
		case O_MEMORY:
			if (cr_parse_size(optarg, &v, &err) < 0 || v < (64ULL << 20))
				return cli_usage_error("--memory: %s", err.code ? err.msg : "at least 64M");
			o->memory = v;
			break;
		case O_HELP: fputs(USAGE, stdout); return -1;
		default:
			return cli_usage_error("analyze: unknown or incomplete option '%s' (see corral analyze --help)",
					       argv[optind - 1]);
		}
	}
	for (; optind < argc; optind++) {
		if (o->n_files >= AGENT_MAX_FILES)
			return cli_usage_error("at most %d data files", AGENT_MAX_FILES);
		struct stat st;
		if (stat(argv[optind], &st) < 0)
			return cli_usage_error("%s: %s", argv[optind], strerror(errno));
		if (!S_ISREG(st.st_mode))
			return cli_usage_error("%s: not a regular file", argv[optind]);
		if (access(argv[optind], R_OK) < 0)
			return cli_usage_error("%s: %s", argv[optind], strerror(errno));
		const char *b = strrchr(argv[optind], '/');
		const char *name = b ? b + 1 : argv[optind];
		if (!*name || !strcmp(name, ".") || !strcmp(name, ".."))
			return cli_usage_error("%s: not a file name", argv[optind]);
		for (size_t i = 0; i < o->n_files; i++) {
			const char *a = strrchr(o->files[i], '/');
			if (!strcmp(a ? a + 1 : o->files[i], name))
				return cli_usage_error("two data files are named %s", name);
		}
		size_t i = o->n_files;
		if (!(o->real[i] = realpath(argv[optind], NULL)) ||
		    (o->fds[i] = open(o->real[i], O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0)
			return cli_usage_error("%s: %s", argv[optind], strerror(errno));
		if (fstat(o->fds[i], &st) < 0 || !S_ISREG(st.st_mode))
			return cli_usage_error("%s: not a regular file", argv[optind]);
		o->sizes[i] = (uint64_t)st.st_size;
		o->files[o->n_files++] = argv[optind];
	}
	if (!o->n_files)
		return cli_usage_error("analyze: no data file (usage: corral analyze DATA [-q QUESTION])");
	return 0;
}

/* The child: unprivileged from its first instruction that touches untrusted data. */
static int child(const struct opts *o, struct agent_config *cfg, int out_fd, const char *key)
{
	if (drop_privileges() < 0) {
		fprintf(stderr, "corral: cannot drop privileges: %s\n", strerror(errno));
		return 1;
	}
	struct cr_err err = {0};
	if (llm_global_init(&err) < 0) { /* libcurl: the model client and the remote backend */
		fprintf(stderr, "corral: %s\n", err.msg);
		return 1;
	}
	struct bk_opts bo;
	bk_opts_init(&bo);
	bo.mode = o->stateless ? BK_STATELESS : BK_STATEFUL;
	bo.memory_bytes = o->memory;
	bo.cell_timeout_ms = (uint32_t)o->cell_timeout_ms;
	bo.lifetime_s = 6 * 3600;
	for (size_t i = 0; i < o->n_files; i++) {
		const char *slash = strrchr(o->files[i], '/');
		bo.data_files[i] = o->real[i];  /* canonical, resolved before the privilege drop */
		bo.data_fds[i] = o->fds[i];
		bo.data_names[i] = slash ? slash + 1 : o->files[i]; /* the name the user gave */
	}
	bo.n_data_files = o->n_files;
	struct bk *b = NULL;
	int r;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (!o->sandbox || !strcmp(o->sandbox, "local")) {
		bk_native_connect = give_preconnected;
		r = bk_create_native(&bo, &b, &err);
	} else {
		r = bk_create_remote(o->sandbox, key, &bo, &b, &err); /* uploads the data files */
	}
	for (size_t i = 0; i < o->n_files; i++)
		close(o->fds[i]); /* the sandbox has its copy or its mount now */
	if (r < 0) {
		fprintf(stderr, "corral: cannot open a sandbox: %s\n", err.msg);
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	cfg->sandbox_open_s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	struct agent_run run;
	r = agent_run(cfg, b, &run, &err);
	bk_cleanup(b);
	if (r < 0) {
		fprintf(stderr, "corral: %s\n", err.msg);
		agent_run_free(&run);
		return 1;
	}
	size_t off = 0;
	while (off < run.html.len) {
		ssize_t n = write(out_fd, run.html.data + off, run.html.len - off);
		if (n < 0) {
			fprintf(stderr, "corral: writing the report: %s\n", strerror(errno));
			agent_run_free(&run);
			return 1;
		}
		off += (size_t)n;
	}
	char cost[32] = "";
	if (cfg->provider != AGENT_OFFLINE)
		snprintf(cost, sizeof cost, run.cost_usd >= 0 ? ", $%.4f" : ", cost unknown", run.cost_usd);
	fprintf(stderr, "corral: %s report: %u figures, %u tables, %u steps, %llu+%llu tokens "
			"(%llu cached)%s, %.1fs (model %.1fs, sandbox %.1fs)%s%s\n",
		run.partial ? "partial" : "complete", run.figures, run.tables, run.steps,
		(unsigned long long)run.tokens_in, (unsigned long long)run.tokens_out,
		(unsigned long long)run.tokens_cached, cost, run.wall_s, run.model_s, run.sandbox_s,
		run.partial ? ": " : "", run.partial ? run.partial_reason : "");
	int code = run.partial ? 2 : 0;
	agent_run_free(&run);
	llm_global_cleanup();
	return code;
}

int corral_ext_analyze(int argc, char **argv)
{
	struct opts o;
	int r = parse(argc, argv, &o);
	if (r)
		return r < 0 ? 0 : r;
	struct agent_config cfg;
	agent_config_init(&cfg);
	cfg.files = o.files;
	cfg.file_sizes = o.sizes;
	cfg.n_files = o.n_files;
	cfg.question = o.question;
	cfg.max_steps = o.max_steps;
	cfg.max_tokens = o.max_tokens;
	cfg.max_cost_usd = o.max_cost;
	cfg.stateless = o.stateless;
	cfg.cell_timeout_ms = (uint32_t)o.cell_timeout_ms;
	cfg.title = o.title;
	cfg.progress_tty = isatty(2);
	cfg.cancel = &cancelled;
	struct cr_err err = {0};

	static char key[1024];
	enum llm_provider lp = LLM_OPENAI;
	if (o.provider && strcmp(o.provider, "offline")) {
		if (llm_provider_parse(o.provider, &lp, &err) < 0)
			return cli_usage_error("--provider: %s (offline, openai, anthropic)", err.msg);
		cfg.provider = lp == LLM_ANTHROPIC ? AGENT_ANTHROPIC : AGENT_OPENAI;
		const char *model = o.model ? o.model
					    : lp == LLM_ANTHROPIC ? "claude-sonnet-4-5" : "gpt-5-mini";
		llm_config_init(&cfg.llm, lp, model);
		cfg.llm.base_url = o.base_url;
		cfg.llm.cancel = &cancelled;
		cfg.llm.total_timeout_ms = (long)o.model_timeout_ms;
		struct llm_price price;
		if (o.max_cost > 0 && llm_price_lookup(model, &price) < 0)
			return cli_usage_error("--max-cost: the price of model '%.64s' is not known, so "
					       "its cost cannot be estimated", model);
		const char *env = llm_key_env_name(lp);
		if (o.key_file && getenv(env) && *getenv(env))
			fprintf(stderr, "corral: warning: %s is set, so --key-file %s is not used\n", env,
				o.key_file);
		int kr = llm_key_from_env_or_file(lp, o.key_file, key, sizeof key, &err);
		if (kr < 0) {
			/* local OpenAI-compatible servers often need no key; a key file that was named
			 * but could not be used is an error all the same */
			if (!(kr == -ENOKEY && !o.key_file && o.base_url && lp == LLM_OPENAI))
				return cli_usage_error("%s", err.msg);
			key[0] = '\0';
		}
		cfg.llm.api_key = key;
	} else if (o.model || o.base_url || o.key_file) {
		return cli_usage_error("--model, --base-url and --key-file need --provider openai|anthropic");
	}
	bool remote = o.sandbox && strcmp(o.sandbox, "local");
	static char remote_key[1100];
	if (remote) {
		const char *k = getenv("CORRAL_API_KEY");
		if (bk_remote_url_check(o.sandbox, &err) < 0)
			return cli_usage_error("%s", err.msg);
		if (!k || !*k)
			return cli_usage_error("--sandbox %.200s: set CORRAL_API_KEY to the server's API key",
					       o.sandbox);
		if (strlen(k) >= sizeof remote_key || strpbrk(k, "\r\n"))
			return cli_usage_error("CORRAL_API_KEY is malformed");
		snprintf(remote_key, sizeof remote_key, "%s", k);
	}
	struct rpt_brand brand;
	rpt_brand_default(&brand);
	if (o.brand && rpt_brand_load(o.brand, &brand, &err) < 0)
		return cli_usage_error("--brand %s: %s", o.brand, err.msg);
	cfg.brand = &brand;

	/* the engine first: when it cannot be reached, nothing has been created yet */
	if (!remote) {
		preconnected = engine_connect(true, &err);
		if (!preconnected) {
			rpt_brand_free(&brand);
			return cli_usage_error("%s", err.msg);
		}
	}

	/* the report: a temp file in the destination directory, moved into place at the end */
	char tmp[PATH_MAX];
	const char *slash = strrchr(o.output, '/');
	snprintf(tmp, sizeof tmp, "%.*s%s.corral-report-XXXXXX", slash ? (int)(slash - o.output + 1) : 0,
		 o.output, "");
	int out_fd = mkstemp(tmp);
	if (out_fd < 0) {
		eng_client_close(preconnected);
		rpt_brand_free(&brand);
		return cli_usage_error("-o %s: %s", o.output, strerror(errno));
	}
	fchmod(out_fd, 0644);
	int trace_fd = -1;
	if (o.trace) {
		trace_fd = open(o.trace, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (trace_fd < 0) {
			unlink(tmp);
			eng_client_close(preconnected);
			rpt_brand_free(&brand);
			return cli_usage_error("--trace %s: %s", o.trace, strerror(errno));
		}
	}
	cfg.trace_fd = trace_fd;

	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		unlink(tmp);
		return cli_usage_error("fork: %s", strerror(errno));
	}
	if (pid == 0)
		_exit(child(&o, &cfg, out_fd, remote ? remote_key : key));
	explicit_bzero(key, sizeof key); /* the parent has no further use for them */
	explicit_bzero(remote_key, sizeof remote_key);
	eng_client_close(preconnected);
	close(trace_fd);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	rpt_brand_free(&brand);
	int code = WIFEXITED(st) ? WEXITSTATUS(st) : 1;
	if ((code == 0 || code == 2) && fsync(out_fd) == 0 && rename(tmp, o.output) == 0) {
		close(out_fd);
		fprintf(stderr, "corral: wrote %s\n", o.output);
		return code;
	}
	close(out_fd);
	unlink(tmp);
	return code ? code : 1;
}
