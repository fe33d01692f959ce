/* core/err.c -- see err.h. */
#include "core/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int fill(struct cr_err *err, int errnum, int with_strerror, const char *fmt, va_list ap)
{
	int code = errnum > 0 ? errnum : EINVAL;
	if (!err)
		return -code;
	char tmp[CR_ERR_MSG_MAX];
	vsnprintf(tmp, sizeof tmp, fmt, ap);
	if (with_strerror && errnum > 0)
		snprintf(err->msg, sizeof err->msg, "%s: %s", tmp, strerror(errnum));
	else
		snprintf(err->msg, sizeof err->msg, "%s", tmp);
	err->code = code;
	return -code;
}

int cr_fail(struct cr_err *err, int errnum, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = fill(err, errnum, 1, fmt, ap);
	va_end(ap);
	return r;
}

int cr_failx(struct cr_err *err, int errnum, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = fill(err, errnum, 0, fmt, ap);
	va_end(ap);
	return r;
}

int cr_wrap(struct cr_err *err, const char *fmt, ...)
{
	if (!err)
		return -EINVAL;
	char ctx[CR_ERR_MSG_MAX], old[CR_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ctx, sizeof ctx, fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof old);
	old[sizeof old - 1] = '\0';
	snprintf(err->msg, sizeof err->msg, "%s: %s", ctx, old);
	if (err->code == 0)
		err->code = EINVAL;
	return -err->code;
}

const char *cr_errno_name(int errnum)
{
	switch (errnum) {
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case ESRCH: return "ESRCH";
	case EINTR: return "EINTR";
	case EIO: return "EIO";
	case E2BIG: return "E2BIG";
	case ENOEXEC: return "ENOEXEC";
	case EBADF: return "EBADF";
	case ECHILD: return "ECHILD";
	case EAGAIN: return "EAGAIN";
	case ENOMEM: return "ENOMEM";
	case EACCES: return "EACCES";
	case EFAULT: return "EFAULT";
	case EBUSY: return "EBUSY";
	case EEXIST: return "EEXIST";
	case EXDEV: return "EXDEV";
	case ENODEV: return "ENODEV";
	case ENOTDIR: return "ENOTDIR";
	case EISDIR: return "EISDIR";
	case EINVAL: return "EINVAL";
	case EMFILE: return "EMFILE";
	case ENOSPC: return "ENOSPC";
	case EROFS: return "EROFS";
	case ENAMETOOLONG: return "ENAMETOOLONG";
	case ENOSYS: return "ENOSYS";
	case ELOOP: return "ELOOP";
	case EOVERFLOW: return "EOVERFLOW";
	case EAFNOSUPPORT: return "EAFNOSUPPORT";
	case EFBIG: return "EFBIG";
	case ETXTBSY: return "ETXTBSY";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	default: return "errno";
	}
}
