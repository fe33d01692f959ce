/* engine/wire.c -- framing helpers (see wire.h). */
#include "engine/wire.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

const double eng_latency_le_ms[12] = {0.5, 1, 2, 5, 10, 25, 50, 100, 250, 1000, 5000, 30000};

const char *eng_final_status_name(uint32_t s)
{
	switch (s) {
	case ENG_F_OK: return "ok";
	case ENG_F_ERROR: return "error";
	case ENG_F_TIMEOUT: return "timeout";
	case ENG_F_MEMORY_LIMIT: return "memory_limit";
	case ENG_F_KILLED: return "killed";
	default: return "killed";
	}
}

void eng_reader_init(struct eng_frame_reader *r, uint32_t max)
{
	memset(r, 0, sizeof *r);
	r->max = max;
	cr_buf_init(&r->payload, max);
}

void eng_reader_free(struct eng_frame_reader *r)
{
	cr_buf_free(&r->payload);
}

void eng_reader_next(struct eng_frame_reader *r)
{
	r->hdr_got = 0;
	r->ready = false;
	cr_buf_reset(&r->payload);
}

int eng_reader_feed(struct eng_frame_reader *r, int fd)
{
	if (r->ready)
		return 1;
	while (r->hdr_got < sizeof r->hdr) {
		ssize_t n = read(fd, (char *)&r->hdr + r->hdr_got, sizeof r->hdr - r->hdr_got);
		if (n == 0)
			return -EPIPE;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : (errno == EINTR ? 0 : -errno);
		r->hdr_got += (size_t)n;
		if (r->hdr_got == sizeof r->hdr && r->hdr.len > r->max)
			return -E2BIG;
	}
	char chunk[65536];
	while (r->payload.len < r->hdr.len) {
		size_t want = r->hdr.len - r->payload.len;
		ssize_t n = read(fd, chunk, want < sizeof chunk ? want : sizeof chunk);
		if (n == 0)
			return -EPIPE;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : (errno == EINTR ? 0 : -errno);
		int rc = cr_buf_append(&r->payload, chunk, (size_t)n);
		if (rc < 0)
			return rc;
	}
	r->ready = true;
	return 1;
}

int eng_frame_put2(struct cr_buf *out, uint32_t type, const void *a, size_t an, const void *b,
		   size_t bn)
{
	if (an + bn > UINT32_MAX || sizeof(struct eng_frame_hdr) + an + bn > out->max - out->len)
		return -E2BIG;
	struct eng_frame_hdr h = {type, (uint32_t)(an + bn)};
	if (cr_buf_append(out, &h, sizeof h) < 0)
		return -ENOMEM;
	if (an && cr_buf_append(out, a, an) < 0)
		return -ENOMEM;
	if (bn && cr_buf_append(out, b, bn) < 0)
		return -ENOMEM;
	return 0;
}

int eng_frame_put(struct cr_buf *out, uint32_t type, const void *p, size_t n)
{
	return eng_frame_put2(out, type, p, n, NULL, 0);
}

static int write_all_iov(int fd, struct iovec *iov, int cnt)
{
	while (cnt > 0) {
		ssize_t n = writev(fd, iov, cnt);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd p = {.fd = fd, .events = POLLOUT};
				poll(&p, 1, 1000);
				continue;
			}
			return -errno;
		}
		while (cnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

int eng_frame_write2(int fd, uint32_t type, const void *a, size_t an, const void *b, size_t bn)
{
	if (an + bn > UINT32_MAX)
		return -E2BIG;
	struct eng_frame_hdr h = {type, (uint32_t)(an + bn)};
	struct iovec iov[3] = {{&h, sizeof h}, {(void *)a, an}, {(void *)b, bn}};
	return write_all_iov(fd, iov, 3);
}

int eng_frame_write(int fd, uint32_t type, const void *p, size_t n)
{
	return eng_frame_write2(fd, type, p, n, NULL, 0);
}

static int read_full(int fd, void *p, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, (char *)p + got, n - got);
		if (r == 0)
			return -EPIPE;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)r;
	}
	return 0;
}

int eng_frame_read(int fd, struct eng_frame_hdr *hdr, struct cr_buf *out, uint32_t max)
{
	int r = read_full(fd, hdr, sizeof *hdr);
	if (r < 0)
		return r;
	if (hdr->len > max)
		return -E2BIG;
	cr_buf_reset(out);
	char chunk[65536];
	size_t left = hdr->len;
	while (left) {
		size_t n = left < sizeof chunk ? left : sizeof chunk;
		if ((r = read_full(fd, chunk, n)) < 0)
			return r;
		if ((r = cr_buf_append(out, chunk, n)) < 0)
			return r;
		left -= n;
	}
	return (int)hdr->len;
}
