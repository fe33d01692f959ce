/* core/log.c -- see log.h. */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cr_log_sink g_sink;
static void *g_ctx;
static int g_level = -1;

static void default_sink(enum cr_log_level level, const char *msg, void *ctx)
{
	(void)ctx;
	static const char *const names[] = {"debug: ", "", "warning: ", "error: "};
	fprintf(stderr, "corral: %s%s\n", names[level], msg);
}

void cr_log_set_sink(cr_log_sink sink, void *ctx)
{
	g_sink = sink;
	g_ctx = ctx;
}

void cr_log_set_level(enum cr_log_level level)
{
	g_level = (int)level;
}

enum cr_log_level cr_log_get_level(void)
{
	if (g_level < 0) {
		const char *d = getenv("CORRAL_DEBUG");
		g_level = (d && *d && strcmp(d, "0")) ? CR_LOG_DEBUG : CR_LOG_WARN;
	}
	return (enum cr_log_level)g_level;
}

void cr_log(enum cr_log_level level, const char *fmt, ...)
{
	if (level < cr_log_get_level())
		return;
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	(g_sink ? g_sink : default_sink)(level, msg, g_ctx);
}

void cr_log_quote(char *out, size_t outsz, const char *in, size_t inlen)
{
	static const char hex[] = "0123456789abcdef";
	size_t j = 0;
	if (outsz < 8) {
		if (outsz)
			out[0] = '\0';
		return;
	}
	out[j++] = '"';
	for (size_t i = 0; i < inlen; i++) {
		unsigned char c = (unsigned char)in[i];
		/* room for the widest escape (4) plus the trailing '..."' and NUL (5) */
		if (j + 9 > outsz) {
			out[j++] = '.';
			out[j++] = '.';
			out[j++] = '.';
			break;
		}
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
			out[j++] = (char)c;
		} else {
			out[j++] = '\\';
			out[j++] = 'x';
			out[j++] = hex[c >> 4];
			out[j++] = hex[c & 15];
		}
	}
	out[j++] = '"';
	out[j] = '\0';
}
