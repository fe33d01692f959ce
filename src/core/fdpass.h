/* core/fdpass.h -- receiving one datagram and the fd passed with it.
 *
 *   int fd;
 *   ssize_t n = cr_recv_with_fd(sock, &msg, sizeof msg, &fd);   // fd: ours to close, or -1
 *   if (n == -EAGAIN) ...                                         // nothing there now
 *
 * Non-blocking; the fd arrives close-on-exec.  There is room for one fd: the kernel releases
 * any more a sender attached.  Returns the length, 0 at EOF, or -errno (errno is not left
 * for the caller to read).
 */
#ifndef CORRAL_CORE_FDPASS_H
#define CORRAL_CORE_FDPASS_H

#include <stddef.h>
#include <sys/types.h>

ssize_t cr_recv_with_fd(int sock, void *buf, size_t len, int *fd);

#endif
