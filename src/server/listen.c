/* server/listen.c -- the front's TCP socket: "HOST:PORT" -> a bound, listening fd.
 * Called while still privileged (a port below 1024 needs it); numeric addresses only, so no
 * name service is consulted by a process that is about to serve the network. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "server/server.h"

static bool is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
			return true;
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
			return in6->sin6_addr.s6_addr[12] == 127;
	}
	return false;
}

int srv_listen_tcp(const char *spec, bool *loopback, struct cr_err *err)
{
	char host[256], port[16];
	const char *colon;
	if (spec[0] == '[') {
		const char *end = strchr(spec, ']');
		if (!end || end[1] != ':' || (size_t)(end - spec - 1) >= sizeof host)
			return cr_failx(err, EINVAL, "--listen %s: expected [IPV6]:PORT", spec);
		snprintf(host, sizeof host, "%.*s", (int)(end - spec - 1), spec + 1);
		colon = end + 1;
	} else {
		colon = strrchr(spec, ':');
		if (!colon || (size_t)(colon - spec) >= sizeof host)
			return cr_failx(err, EINVAL, "--listen %s: expected HOST:PORT", spec);
		snprintf(host, sizeof host, "%.*s", (int)(colon - spec), spec);
	}
	if (snprintf(port, sizeof port, "%s", colon + 1) >= (int)sizeof port || !port[0])
		return cr_failx(err, EINVAL, "--listen %s: bad port", spec);
	if (!strcmp(host, "localhost"))
		snprintf(host, sizeof host, "127.0.0.1");
	if (!host[0])
		return cr_failx(err, EINVAL, "--listen %s: give an address (0.0.0.0 for all)", spec);
	struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
				 .ai_socktype = SOCK_STREAM};
	struct addrinfo *ai = NULL;
	int gr = getaddrinfo(host, port, &hints, &ai);
	if (gr != 0)
		return cr_failx(err, EINVAL, "--listen %s: %s (numeric addresses only)", spec,
				gai_strerror(gr));
	CR_AUTOCLOSE int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		freeaddrinfo(ai);
		return cr_fail(err, errno, "socket");
	}
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	*loopback = is_loopback(ai->ai_addr);
	int r = bind(fd, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	if (r < 0)
		return cr_fail(err, errno, "cannot listen on %s", spec);
	if (listen(fd, 1024) < 0)
		return cr_fail(err, errno, "listen on %s", spec);
	return cr_take_fd(&fd);
}
