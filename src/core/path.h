/* core/path.h -- opening paths that a sandbox could have touched, without following its traps.
 *
 *   int root = open("/some/dir", O_PATH | O_DIRECTORY | O_CLOEXEC);
 *   int fd = cr_open_beneath(root, "sub/file.csv", O_RDONLY, 0, &err);
 *
 * Resolution never leaves `dirfd`: ".." past it, absolute paths, every symlink (even one that
 * stays inside) and magic links (/proc/PID/fd/...) are refused, and so is crossing onto another
 * mount.  Uses openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
 * RESOLVE_NO_XDEV); where the kernel lacks openat2 it walks the path one component at a time
 * with O_NOFOLLOW and checks st_dev, which gives the same guarantee.
 */
#ifndef CORRAL_CORE_PATH_H
#define CORRAL_CORE_PATH_H

#include <stdbool.h>
#include <sys/types.h>

#include "core/err.h"

/* Checks a relative path given by untrusted input: non-empty, not absolute, no "." or ".."
 * components, no empty components, no NUL, at most 1023 bytes. */
int cr_path_check_relative(const char *rel, struct cr_err *err);

/* Opens rel beneath dirfd (see above). flags as for openat (O_CREAT allowed with mode).
 * Returns the fd or -errno. ELOOP/EXDEV/EXDEV mean the path tried to escape. */
int cr_open_beneath(int dirfd, const char *rel, int flags, mode_t mode, struct cr_err *err);

/* Creates every directory of rel beneath dirfd (like mkdir -p), same resolution rules, and
 * returns an O_PATH|O_DIRECTORY fd on the last one. */
int cr_mkdir_beneath(int dirfd, const char *rel, mode_t mode, struct cr_err *err);

/* Test hook: force the component-walking fallback even where openat2 exists. */
void cr_path_force_fallback(bool on);
/* True when the running kernel supports openat2. */
bool cr_have_openat2(void);

#endif
