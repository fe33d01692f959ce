/* engine/zygote_proto.h -- manager <-> corral-zygote messages (SOCK_SEQPACKET, fd 3).
 *
 *   zygote -> manager  struct zyg_ready        once, after the preload
 *   manager -> zygote  struct zyg_spawn        + SCM_RIGHTS fds in ZYG_FD_* order
 *   zygote -> manager  struct zyg_spawned      + SCM_RIGHTS pidfd of the new session's init
 *
 * And on a session's ctl socket (the one its init shares with the manager), once, from the
 * session process itself: ZYG_WARM, when its runner has warmed up and waits for START; the
 * runner closes the socket right after, before anything else can run in the session.
 *
 * Fixed layouts, one message per record.  The manager is the only peer; the zygote still
 * checks magic and sizes and answers anything malformed with errnum = EINVAL.
 */
#ifndef CORRAL_ENGINE_ZYGOTE_PROTO_H
#define CORRAL_ENGINE_ZYGOTE_PROTO_H

#include <stdint.h>

#include "sandbox/cgroup.h"

#define ZYG_MAGIC 0x7a796731u /* "zyg1" */
#define ZYG_WARM "warm"       /* 4 bytes, no NUL (runner.py sends b"warm") */
#define ZYG_WARM_LEN 4u

enum {
	ZYG_FD_PLAN = 0, /* memfd holding struct sbx_plan */
	ZYG_FD_CTL,      /* SEQPACKET: the session's init <-> manager */
	ZYG_FD_CHAN,     /* STREAM: the session's runner <-> manager */
	ZYG_FD_OUT,      /* pipe write end: the session's fd 1 */
	ZYG_FD_ERR,      /* pipe write end: the session's fd 2 */
	ZYG_FD_CGROUP,   /* v2 only: the session's cgroup directory (CLONE_INTO_CGROUP) */
	ZYG_NFDS,
};

struct zyg_ready {
	uint32_t magic;
	int32_t pid;
	char python[32];
	char preload[512];
};

struct zyg_spawn {
	uint32_t magic;
	uint32_t reserved;
	uint64_t session;
	struct sbx_cg cg; /* v1 paths for the child's self-attach (created = 0: none) */
};

struct zyg_spawned {
	uint32_t magic;
	int32_t errnum;   /* 0 or the clone3 errno */
	uint64_t session;
	int32_t pid;      /* host pid of the session's init */
	int32_t born_in_cgroup;
};

#endif
