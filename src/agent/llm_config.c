/* agent/llm_config.c -- the defaults table, names, and API keys (environment or file). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/llm.h"
#include "agent/llm_wire.h"
#include "core/cleanup.h"

/* The one defaults table of the LLM layer (docs/LLM.md mirrors it). */
const struct llm_config llm_config_default = {
	.provider = LLM_OPENAI,
	.max_output_tokens = 4096,
	.token_field = LLM_TOKENS_AUTO,
	.temperature = -1,
	.connect_timeout_ms = 10000,
	.total_timeout_ms = 600000,
	.idle_timeout_ms = 0,
	.max_retries = 4,
	.backoff_base_ms = 500,
	.backoff_cap_ms = 8000,
	.retry_after_cap_ms = 60000,
	.max_reply_bytes = 8u << 20,
};

void llm_config_init(struct llm_config *cfg, enum llm_provider p, const char *model)
{
	*cfg = llm_config_default;
	cfg->provider = p;
	cfg->model = model;
}

const char *llm_provider_name(enum llm_provider p)
{
	switch (p) {
	case LLM_OPENAI: return "openai";
	case LLM_ANTHROPIC: return "anthropic";
	}
	return "?";
}

int llm_provider_parse(const char *s, enum llm_provider *out, struct cr_err *err)
{
	static const char *const openai[] = {"openai", "openai-compatible", "ollama", "vllm",
					     "llamacpp", "llama.cpp"};
	for (size_t i = 0; s && i < sizeof openai / sizeof openai[0]; i++) {
		if (!strcasecmp(s, openai[i])) {
			*out = LLM_OPENAI;
			return 0;
		}
	}
	if (s && (!strcasecmp(s, "anthropic") || !strcasecmp(s, "claude"))) {
		*out = LLM_ANTHROPIC;
		return 0;
	}
	char q[64];
	llm_quote(q, sizeof q, s);
	return cr_failx(err, EINVAL, "unknown provider %s (openai or anthropic)", q);
}

const char *llm_finish_name(enum llm_finish f)
{
	switch (f) {
	case LLM_FINISH_END: return "end";
	case LLM_FINISH_TOOL_USE: return "tool_use";
	case LLM_FINISH_LENGTH: return "length";
	case LLM_FINISH_REFUSAL: return "refusal";
	case LLM_FINISH_OTHER: break;
	}
	return "other";
}

const char *llm_key_env_name(enum llm_provider p)
{
	return p == LLM_ANTHROPIC ? "ANTHROPIC_API_KEY" : "OPENAI_API_KEY";
}

/* Keys go into an HTTP header: printable ASCII without spaces, nothing that could end it. */
static bool key_chars_ok(const char *k, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)k[i] <= 0x20 || (unsigned char)k[i] >= 0x7f)
			return false;
	return n > 0;
}

static size_t trim(const char *s, size_t n, size_t *start)
{
	size_t a = 0;
	while (a < n && (s[a] == ' ' || s[a] == '\t'))
		a++;
	while (n > a && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
		n--;
	*start = a;
	return n - a;
}

static int put_key(const char *k, size_t n, char *out, size_t outsz, const char *from,
		   struct cr_err *err)
{
	if (!key_chars_ok(k, n))
		return cr_failx(err, EINVAL, "the API key in %s contains spaces or control "
				"characters", from);
	if (n >= outsz)
		return cr_failx(err, E2BIG, "the API key in %s is longer than %zu bytes", from,
				outsz - 1);
	memcpy(out, k, n);
	out[n] = '\0';
	return 0;
}

int llm_key_from_env_or_file(enum llm_provider p, const char *key_file, char *out, size_t outsz,
			     struct cr_err *err)
{
	if (!out || outsz == 0)
		return cr_failx(err, EINVAL, "no room for the API key");
	out[0] = '\0';
	const char *env = llm_key_env_name(p);
	const char *v = getenv(env);
	if (v && *v) {
		size_t a, n = trim(v, strlen(v), &a);
		return put_key(v + a, n, out, outsz, env, err);
	}
	if (!key_file || !*key_file)
		return cr_failx(err, ENOKEY, "no API key: set %s or give a key file", env);

	CR_AUTOCLOSE int fd = open(key_file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return cr_fail(err, errno, "key file %s", key_file);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return cr_fail(err, errno, "key file %s", key_file);
	if (!S_ISREG(st.st_mode))
		return cr_failx(err, EINVAL, "key file %s is not a regular file", key_file);
	if (st.st_mode & (S_IRGRP | S_IROTH))
		return cr_failx(err, EPERM,
				"key file %s is readable by group or others (mode %04o): "
				"run chmod 600 %s",
				key_file, (unsigned)(st.st_mode & 07777), key_file);
	char buf[4096];
	size_t len = 0;
	while (len < sizeof buf) {
		ssize_t r = read(fd, buf + len, sizeof buf - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			explicit_bzero(buf, sizeof buf);
			return cr_fail(err, e, "key file %s", key_file);
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	char *nl = memchr(buf, '\n', len);
	size_t line = nl ? (size_t)(nl - buf) : len;
	size_t a, n = trim(buf, line, &a);
	int rc;
	if (n == 0)
		rc = cr_failx(err, ENOKEY, "key file %s: the first line is empty", key_file);
	else
		rc = put_key(buf + a, n, out, outsz, "the key file", err);
	explicit_bzero(buf, sizeof buf);
	return rc;
}
