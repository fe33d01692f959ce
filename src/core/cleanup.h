/* core/cleanup.h -- scope-bound cleanup with explicit hand-over of ownership.
 *
 *   CR_AUTOCLOSE int fd = -1;          // always initialise: -1 / NULL means "nothing owned"
 *   CR_AUTOFREE char *buf = NULL;
 *   fd = open(...);
 *   ...
 *   *out_fd = cr_take_fd(&fd);         // success: the caller owns it now; nothing closes here
 *
 * Rule: use these for locals; `goto out` only where several things must be unwound in a fixed
 * order, and never mix both styles in one function.
 */
#ifndef CORRAL_CORE_CLEANUP_H
#define CORRAL_CORE_CLEANUP_H

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static inline void cr_freep(void *p)
{
	free(*(void **)p);
}
static inline void cr_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}
static inline void cr_fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}
static inline void cr_closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}
/* Kills and reaps a child on scope exit: any early return cannot leak a half-made process. */
static inline void cr_killreapp(pid_t *pid)
{
	if (*pid > 0) {
		int saved = errno;
		kill(*pid, SIGKILL);
		while (waitpid(*pid, NULL, 0) < 0 && errno == EINTR)
			;
		errno = saved;
	}
}

#define CR_AUTOFREE __attribute__((cleanup(cr_freep)))
#define CR_AUTOCLOSE __attribute__((cleanup(cr_closep)))
#define CR_AUTOFCLOSE __attribute__((cleanup(cr_fclosep)))
#define CR_AUTOCLOSEDIR __attribute__((cleanup(cr_closedirp)))
#define CR_AUTOKILL __attribute__((cleanup(cr_killreapp)))

static inline int cr_take_fd(int *fd)
{
	int v = *fd;
	*fd = -1;
	return v;
}
static inline void *cr_take_ptr(void *pp)
{
	void **p = (void **)pp;
	void *v = *p;
	*p = NULL;
	return v;
}
static inline pid_t cr_take_pid(pid_t *pid)
{
	pid_t v = *pid;
	*pid = -1;
	return v;
}

#endif
