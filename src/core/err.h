/* core/err.h -- the one error convention of corral (docs/design/error-handling.md).
 *
 *   struct cr_err err = {0};
 *   if (do_thing(arg, &err) < 0)            // every fallible call returns 0 or -errno
 *       fprintf(stderr, "corral: %s\n", err.msg);
 *
 *   int do_thing(const char *p, struct cr_err *err) {
 *       if (mkdir(p, 0700) < 0)
 *           return cr_fail(err, errno, "mkdir %s", p);   // one line: fills err, returns -errno
 *       ...
 *   }
 *
 * The message lives in a fixed buffer: no allocation on the failure path, so the struct can be
 * filled in a forked child between clone() and execve() and sent over a pipe as-is.  `err` may
 * be NULL when the caller only wants the code.  cr_fail appends ": strerror(errno)" itself.
 */
#ifndef CORRAL_CORE_ERR_H
#define CORRAL_CORE_ERR_H

#include <stddef.h>

#define CR_ERR_MSG_MAX 256

struct cr_err {
	int code;                  /* positive errno value; 0 = no error recorded */
	char msg[CR_ERR_MSG_MAX];  /* one line, human readable, NUL-terminated */
};

/* Record errnum and a formatted message (": strerror" appended when errnum != 0).
 * Returns -errnum (or -EINVAL when errnum is 0) so call sites can `return cr_fail(...)`. */
int cr_fail(struct cr_err *err, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Like cr_fail, without the strerror suffix: for errors that are about input, not the OS. */
int cr_failx(struct cr_err *err, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefix the message already in err with more context ("while X: <old>"). Returns -err->code. */
int cr_wrap(struct cr_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Async-signal-safe strerror substitute for forked children: returns a static string. */
const char *cr_errno_name(int errnum);

#endif
