/* cli/engine_daemon.h -- finding (and starting) the local engine daemon. */
#ifndef CORRAL_CLI_ENGINE_DAEMON_H
#define CORRAL_CLI_ENGINE_DAEMON_H

#include <stdbool.h>
#include <stddef.h>

#include "engine/engine.h"

void engine_socket_path(char *out, size_t n);
/* Connects to the daemon; with autostart, starts it when nothing listens. */
struct eng_client *engine_connect(bool autostart, struct cr_err *err);

#endif
