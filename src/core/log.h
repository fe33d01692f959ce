/* core/log.h -- leveled logging with a swappable sink.
 *
 *   cr_log(CR_LOG_WARN, "cgroup memory limit unavailable: %s", why);
 *   cr_log_set_sink(my_json_sink, ctx);     // the server logs JSON lines; the CLI plain text
 *
 * Default sink: "corral: <message>" on stderr, warnings and errors only unless
 * cr_log_set_level(CR_LOG_DEBUG) (or CORRAL_DEBUG=1).  Never log untrusted bytes raw: quote them
 * with cr_log_quote first.  The pre-exec sandbox child never logs (it reports over its pipe).
 */
#ifndef CORRAL_CORE_LOG_H
#define CORRAL_CORE_LOG_H

#include <stddef.h>

enum cr_log_level { CR_LOG_DEBUG = 0, CR_LOG_INFO, CR_LOG_WARN, CR_LOG_ERROR };

typedef void (*cr_log_sink)(enum cr_log_level level, const char *msg, void *ctx);

void cr_log(enum cr_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cr_log_set_sink(cr_log_sink sink, void *ctx);
void cr_log_set_level(enum cr_log_level level);
enum cr_log_level cr_log_get_level(void);
/* Writes a printable, quoted, length-capped rendering of untrusted bytes into out. */
void cr_log_quote(char *out, size_t outsz, const char *in, size_t inlen);

#endif
