/* server/ops.c -- the sandbox operations every route family needs, over the engine's wire.
 *
 * Each HTTP connection thread keeps one engine connection (one operation at a time, so one
 * per thread is exactly enough) and reuses it across requests.  An operation left half-way --
 * a client that hung up mid-cell, an upload refused mid-body -- closes its connection
 * instead: the manager then interrupts the cell or drops the transfer (session_client_gone).
 *
 * Cells and downloads are pulled one engine frame at a time while the HTTP socket is watched
 * for a hang-up (POLLRDHUP), so a vanished client stops its cell at once rather than at the
 * next write.  The frame layouts are the engine's public wire format (engine/wire.h).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/srv_internal.h"

#define ENGINE_SILENCE_MS 60000 /* cells send keepalives every 5 s; silence this long = broken */

uint64_t srv_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

uint64_t srv_unix_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* -- the thread's engine connection ------------------------------------------------------ */

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_destroy(void *p)
{
	eng_client_close(p);
}

static void cache_init(void)
{
	pthread_key_create(&cache_key, cache_destroy);
}

struct eng_client *srv_engine_take(struct cr_err *err)
{
	pthread_once(&cache_once, cache_init);
	struct eng_client *c = pthread_getspecific(cache_key);
	if (c) {
		pthread_setspecific(cache_key, NULL);
		return c;
	}
	c = eng_client_connect(srv_cfg()->engine_socket, err);
	if (!c && err && (err->code == ENOENT || err->code == ECONNREFUSED))
		cr_failx(err, ECONNREFUSED, "the engine is not available");
	return c;
}

void srv_engine_give(struct eng_client *c, bool reusable)
{
	if (!c)
		return;
	pthread_once(&cache_once, cache_init);
	if (reusable && !pthread_getspecific(cache_key))
		pthread_setspecific(cache_key, c);
	else
		eng_client_close(c);
}

/* Waits for the engine to have a frame, watching the HTTP client (cfd < 0: not watched). */
static int wait_engine(int efd, int cfd, struct cr_err *err)
{
	for (;;) {
		struct pollfd p[2] = {{.fd = efd, .events = POLLIN}, {.fd = cfd, .events = POLLRDHUP}};
		int n = poll(p, cfd >= 0 ? 2 : 1, ENGINE_SILENCE_MS);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return cr_fail(err, errno, "poll");
		if (n == 0)
			return cr_failx(err, ETIMEDOUT, "the engine did not answer");
		if (cfd >= 0 && (p[1].revents & (POLLRDHUP | POLLHUP | POLLERR)))
			return cr_failx(err, ECONNRESET, "the client went away");
		if (p[0].revents)
			return 0;
	}
}

/* Reads one frame; an ENG_RSP_ERROR becomes -errnum with the engine's message. */
static int read_frame(int efd, int cfd, struct eng_frame_hdr *h, struct cr_buf *buf,
		      bool *clean, struct cr_err *err)
{
	int r = wait_engine(efd, cfd, err);
	if (r < 0)
		return r;
	r = eng_frame_read(efd, h, buf, ENG_MAX_RUNNER_FRAME);
	if (r < 0)
		return cr_fail(err, -r == EPIPE ? ECONNRESET : -r, "reading from the engine");
	if (h->type != ENG_RSP_ERROR)
		return 0;
	struct eng_rsp_error e;
	if (h->len != sizeof e)
		return cr_failx(err, EPROTO, "malformed error from the engine");
	memcpy(&e, buf->data, sizeof e);
	e.message[sizeof e.message - 1] = '\0';
	*clean = true; /* an error reply ends the operation: the connection can be reused */
	return cr_failx(err, e.errnum > 0 ? e.errnum : EIO, "%s", e.message);
}

/* -- cells ------------------------------------------------------------------------------- */

#define EXEC_IN_MAX (64u << 10)

/* Cell frames are read through a buffer: a print(1) cell's stdout and final frames usually
 * come in one read(), where eng_frame_read would take two per frame. */
static int exec_fill(struct srv_exec *x, struct cr_err *err)
{
	if (x->in_off) {
		memmove(x->in, x->in + x->in_off, x->in_len - x->in_off);
		x->in_len -= x->in_off;
		x->in_off = 0;
	}
	int r = wait_engine(x->efd, x->cfd, err);
	if (r < 0)
		return r;
	for (;;) {
		ssize_t n = read(x->efd, x->in + x->in_len, EXEC_IN_MAX - x->in_len);
		if (n > 0) {
			x->in_len += (size_t)n;
			return 0;
		}
		if (n < 0 && errno == EINTR)
			continue;
		return cr_failx(err, ECONNRESET, "the engine closed the connection");
	}
}

bool srv_exec_ready(const struct srv_exec *x)
{
	struct eng_frame_hdr h;
	if (x->done || x->in_len - x->in_off < sizeof h)
		return false;
	memcpy(&h, x->in + x->in_off, sizeof h);
	return x->in_len - x->in_off - sizeof h >= h.len;
}

static int exec_read_frame(struct srv_exec *x, bool *clean, struct cr_err *err)
{
	int r;
	while (x->in_len - x->in_off < sizeof x->hdr)
		if ((r = exec_fill(x, err)) < 0)
			return r;
	memcpy(&x->hdr, x->in + x->in_off, sizeof x->hdr);
	x->in_off += sizeof x->hdr;
	if (x->hdr.len > ENG_MAX_RUNNER_FRAME)
		return cr_failx(err, EPROTO, "oversized frame from the engine");
	cr_buf_reset(&x->frame);
	size_t left = x->hdr.len;
	while (left) {
		if (x->in_off == x->in_len) {
			x->in_off = x->in_len = 0;
			if ((r = exec_fill(x, err)) < 0)
				return r;
		}
		size_t n = x->in_len - x->in_off < left ? x->in_len - x->in_off : left;
		if (cr_buf_append(&x->frame, x->in + x->in_off, n) < 0)
			return cr_fail(err, ENOMEM, "frame");
		x->in_off += n;
		left -= n;
	}
	if (x->hdr.type != ENG_RSP_ERROR)
		return 0;
	struct eng_rsp_error e;
	if (x->hdr.len != sizeof e)
		return cr_failx(err, EPROTO, "malformed error from the engine");
	memcpy(&e, x->frame.data, sizeof e);
	e.message[sizeof e.message - 1] = '\0';
	*clean = x->in_off == x->in_len; /* an error reply ends the operation */
	return cr_failx(err, e.errnum > 0 ? e.errnum : EIO, "%s", e.message);
}

int srv_exec_start(struct srv_exec *x, uint64_t session, const struct srv_exec_req *q,
		   int client_fd, struct cr_err *err)
{
	memset(x, 0, sizeof *x);
	x->efd = -1;
	x->cfd = client_fd;
	cr_buf_init(&x->frame, ENG_MAX_RUNNER_FRAME);
	x->in = malloc(EXEC_IN_MAX);
	if (!x->in)
		return cr_fail(err, ENOMEM, "cell buffer");
	x->cl = srv_engine_take(err);
	if (!x->cl)
		return -(err->code ? err->code : EIO);
	x->efd = eng_client_fd(x->cl);
	if (!q->command && q->context[0] && strcmp(q->context, "default")) {
		/* contexts are made on first use; "already exists" is the expected answer later */
		int r = eng_client_context(x->cl, session, q->context, true, err);
		if (r < 0 && r != -EINVAL) {
			x->done = r != -EPIPE && r != -ECONNRESET; /* an engine error left it clean */
			return r;
		}
	}
	struct eng_req_execute req;
	memset(&req, 0, sizeof req);
	req.session = session;
	req.timeout_ms = q->timeout_ms;
	req.flags = ENG_EXEC_ACK | (q->svg ? ENG_EXEC_SVG : 0) | (q->command ? ENG_EXEC_COMMAND : 0);
	snprintf(req.context, sizeof req.context, "%s", q->context);
	int r = eng_frame_write2(x->efd, ENG_REQ_EXECUTE, &req, sizeof req, q->code, q->code_len);
	if (r < 0)
		return cr_fail(err, -r, "sending the cell to the engine");
	/* the answer comes at once, whatever the cell does: accepted, or refused */
	bool clean = false;
	r = exec_read_frame(x, &clean, err);
	if (r < 0) {
		x->done = clean;
		return r;
	}
	if (x->hdr.type != ENG_EV_ACCEPTED)
		return cr_failx(err, EPROTO, "the engine answered a cell with frame %u, not its "
				"acceptance", x->hdr.type);
	return 0;
}

int srv_exec_next(struct srv_exec *x, struct cr_err *err)
{
	if (x->done)
		return 0;
	bool clean = false;
	int r = exec_read_frame(x, &clean, err);
	if (r < 0) {
		x->done = false;
		return r;
	}
	switch (x->hdr.type) {
	case ENG_EV_FINAL:
		if (x->hdr.len != sizeof x->fin)
			return cr_failx(err, EPROTO, "malformed final event from the engine");
		memcpy(&x->fin, x->frame.data, sizeof x->fin);
		/* nothing may follow the final frame: anything that did makes the connection unusable */
		x->done = x->in_off == x->in_len;
		if (!x->done)
			return cr_failx(err, EPROTO, "data after the final frame from the engine");
		return 0;
	case ENG_EV_STDOUT:
	case ENG_EV_STDERR:
	case ENG_EV_JSON:
	case ENG_EV_KEEPALIVE:
		return 1;
	default:
		return cr_failx(err, EPROTO, "unexpected frame %u from the engine", x->hdr.type);
	}
}

void srv_exec_end(struct srv_exec *x)
{
	/* not done: the cell still runs; closing the connection makes the manager interrupt it */
	srv_engine_give(x->cl, x->done);
	x->cl = NULL;
	cr_buf_free(&x->frame);
	free(x->in);
	x->in = NULL;
}

/* -- uploads ----------------------------------------------------------------------------- */

int srv_upload_begin(struct srv_upload *u, uint64_t session, const char *path, uint64_t size,
		     struct cr_err *err)
{
	memset(u, 0, sizeof *u);
	cr_buf_init(&u->chunk, ENG_FILE_CHUNK);
	struct eng_req_file req;
	memset(&req, 0, sizeof req);
	req.session = session;
	req.size = size;
	if (snprintf(req.path, sizeof req.path, "%s", path) >= (int)sizeof req.path)
		return cr_failx(err, ENAMETOOLONG, "the file path is too long");
	u->cl = srv_engine_take(err);
	if (!u->cl)
		return -(err->code ? err->code : EIO);
	int r = eng_frame_write(eng_client_fd(u->cl), ENG_REQ_FILE_WRITE, &req, sizeof req);
	if (r < 0) {
		srv_engine_give(u->cl, false);
		u->cl = NULL;
		return cr_fail(err, -r, "writing to the engine");
	}
	u->stream = size == ENG_SIZE_STREAM;
	u->left = u->stream ? srv_cfg()->max_upload_bytes : size;
	return 0;
}

/* Sends the buffered chunk -- unless the engine already refused the file (a bad path is
 * answered right after the request): then the rest of the body is swallowed here. */
static void upload_flush(struct srv_upload *u)
{
	if (u->error || u->chunk.len == 0)
		return;
	int efd = eng_client_fd(u->cl);
	struct pollfd p = {.fd = efd, .events = POLLIN};
	if (poll(&p, 1, 0) == 1) {
		struct eng_frame_hdr h;
		struct cr_buf b;
		cr_buf_init(&b, 4096);
		bool clean = false;
		int r = read_frame(efd, -1, &h, &b, &clean, &u->err);
		cr_buf_free(&b);
		u->error = r < 0 ? r : -EPROTO;
		if (r == 0)
			cr_failx(&u->err, EPROTO, "unexpected reply %u from the engine", h.type);
		return;
	}
	int r = eng_frame_write(efd, ENG_REQ_DATA, u->chunk.data, u->chunk.len);
	if (r < 0)
		u->error = cr_fail(&u->err, -r, "writing to the engine");
	cr_buf_reset(&u->chunk);
}

void srv_upload_data(struct srv_upload *u, const char *data, size_t len)
{
	if (u->error)
		return;
	if (len > u->left && u->stream) {
		u->error = cr_failx(&u->err, EFBIG, "uploads are limited to %llu bytes",
				    (unsigned long long)srv_cfg()->max_upload_bytes);
		return;
	}
	if (len > u->left) {
		u->error = cr_failx(&u->err, EINVAL, "the body is longer than its Content-Length");
		return;
	}
	u->left -= len;
	while (len && !u->error) {
		size_t room = ENG_FILE_CHUNK - u->chunk.len;
		size_t n = len < room ? len : room;
		cr_buf_append(&u->chunk, data, n);
		data += n;
		len -= n;
		if (u->chunk.len == ENG_FILE_CHUNK)
			upload_flush(u);
	}
}

int srv_upload_end(struct srv_upload *u)
{
	bool reusable = false;
	if (!u->error && u->left && !u->stream)
		u->error = cr_failx(&u->err, EINVAL, "the body is shorter than its Content-Length");
	if (!u->error)
		upload_flush(u);
	if (!u->error && u->stream) { /* the end of an upload of unknown size: an empty frame */
		int r = eng_frame_write(eng_client_fd(u->cl), ENG_REQ_DATA, "", 0);
		if (r < 0)
			u->error = cr_fail(&u->err, -r, "writing to the engine");
	}
	if (!u->error) {
		struct eng_frame_hdr h;
		struct cr_buf b;
		cr_buf_init(&b, 4096);
		bool clean = false;
		int r = read_frame(eng_client_fd(u->cl), -1, &h, &b, &clean, &u->err);
		cr_buf_free(&b);
		if (r == 0 && (h.type != ENG_RSP_OK || h.len != sizeof(struct eng_rsp_ok)))
			r = cr_failx(&u->err, EPROTO, "unexpected reply %u from the engine", h.type);
		u->error = r;
		reusable = r == 0 || clean;
	}
	srv_engine_give(u->cl, reusable);
	u->cl = NULL;
	cr_buf_free(&u->chunk);
	return u->error;
}

void srv_upload_abort(struct srv_upload *u)
{
	srv_engine_give(u->cl, false);
	u->cl = NULL;
	cr_buf_free(&u->chunk);
}

/* -- downloads --------------------------------------------------------------------------- */

int srv_download_begin(struct srv_download *d, uint64_t session, const char *path,
		       int client_fd, struct cr_err *err)
{
	memset(d, 0, sizeof *d);
	d->cfd = client_fd;
	cr_buf_init(&d->frame, ENG_MAX_RUNNER_FRAME);
	struct eng_req_file req;
	memset(&req, 0, sizeof req);
	req.session = session;
	if (snprintf(req.path, sizeof req.path, "%s", path) >= (int)sizeof req.path)
		return cr_failx(err, ENAMETOOLONG, "the file path is too long");
	d->cl = srv_engine_take(err);
	if (!d->cl)
		return -(err->code ? err->code : EIO);
	int efd = eng_client_fd(d->cl);
	int r = eng_frame_write(efd, ENG_REQ_FILE_READ, &req, sizeof req);
	struct eng_frame_hdr h;
	bool clean = false;
	if (r < 0)
		r = cr_fail(err, -r, "writing to the engine");
	else
		r = read_frame(efd, -1, &h, &d->frame, &clean, err);
	if (r == 0 && (h.type != ENG_RSP_FILE_INFO || h.len != sizeof(struct eng_rsp_file_info)))
		r = cr_failx(err, EPROTO, "unexpected reply %u from the engine", h.type);
	if (r < 0) {
		srv_engine_give(d->cl, clean);
		d->cl = NULL;
		cr_buf_free(&d->frame);
		return r;
	}
	struct eng_rsp_file_info info;
	memcpy(&info, d->frame.data, sizeof info);
	cr_buf_reset(&d->frame);
	d->size = d->left = info.size;
	return 0;
}

ssize_t srv_download_read(struct srv_download *d, char *buf, size_t max)
{
	struct cr_err err = {0};
	while (d->off == d->frame.len) {
		if (d->left == 0)
			return 0;
		struct eng_frame_hdr h;
		bool clean = false;
		int r = read_frame(eng_client_fd(d->cl), d->cfd, &h, &d->frame, &clean, &err);
		if (r < 0)
			return r;
		if (h.type != ENG_RSP_DATA || h.len > d->left)
			return -EPROTO;
		d->off = 0;
		d->left -= h.len;
	}
	size_t n = d->frame.len - d->off;
	if (n > max)
		n = max;
	memcpy(buf, d->frame.data + d->off, n);
	d->off += n;
	return (ssize_t)n;
}

void srv_download_end(struct srv_download *d)
{
	bool reusable = false;
	if (d->cl && d->left == 0 && d->off == d->frame.len) {
		/* every byte went out: collect the engine's closing OK to reuse the connection */
		struct eng_frame_hdr h;
		struct cr_err err;
		bool clean = false;
		reusable = read_frame(eng_client_fd(d->cl), -1, &h, &d->frame, &clean, &err) == 0 &&
			   h.type == ENG_RSP_OK;
	}
	srv_engine_give(d->cl, reusable);
	d->cl = NULL;
	cr_buf_free(&d->frame);
}
