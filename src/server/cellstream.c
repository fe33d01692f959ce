/* server/cellstream.c -- a streamed HTTP reply fed by a running cell or command: each engine
 * event is turned into reply bytes by the route's converter as it arrives, so the client sees
 * output as it happens; the final event (or an engine failure) ends the reply.  A client that
 * hangs up stops the cell (srv_exec_end closes the engine connection mid-cell). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/srv_internal.h"

#define BUSY_WAIT_US 1000000

struct srv_cell_stream {
	struct srv_exec x;
	struct cr_buf out;
	size_t off;
	bool finished;
	const struct srv_cell_conv *conv;
	void *ctx;
};

static void finish(struct srv_cell_stream *s, const struct eng_final *f, const char *error)
{
	s->conv->finish(s->ctx, f, error, &s->out);
	s->finished = true;
}

static ssize_t cell_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	struct srv_cell_stream *s = cls;
	while (s->off == s->out.len) {
		if (s->finished)
			return MHD_CONTENT_READER_END_OF_STREAM;
		cr_buf_reset(&s->out);
		s->off = 0;
		struct cr_err err = {0};
		int rc = srv_exec_next(&s->x, &err);
		while (rc == 1) {
			s->conv->event(s->ctx, s->x.hdr.type, s->x.frame.data, s->x.frame.len, &s->out);
			/* what already arrived goes out in the same chunk */
			if (s->out.len >= 32768 || !srv_exec_ready(&s->x))
				break;
			rc = srv_exec_next(&s->x, &err);
		}
		if (rc == 0)
			finish(s, &s->x.fin, NULL);
		else if (rc == -ECONNRESET)
			return MHD_CONTENT_READER_END_WITH_ERROR; /* the cell is stopped at release */
		else if (rc < 0)
			finish(s, NULL, err.msg);
	}
	size_t n = s->out.len - s->off;
	if (n > max)
		n = max;
	memcpy(buf, s->out.data + s->off, n);
	s->off += n;
	return (ssize_t)n;
}

static void cell_release(void *cls)
{
	struct srv_cell_stream *s = cls;
	srv_exec_end(&s->x);
	if (s->conv->release)
		s->conv->release(s->ctx);
	cr_buf_free(&s->out);
	free(s);
	srv_metrics_stream(-1);
}

int srv_cell_start(struct srv_req *r, uint64_t session, const struct srv_exec_req *q,
		   const struct srv_cell_conv *conv, void *ctx, struct srv_cell_stream **out,
		   struct cr_err *err)
{
	*out = NULL;
	struct srv_cell_stream *s = calloc(1, sizeof *s);
	if (!s)
		return cr_fail(err, ENOMEM, "stream");
	/* A cell whose client just went away is still being interrupted for a moment: a client
	 * that gave up on a command and starts the next one at once must not be told "busy". */
	uint64_t give_up = srv_now_us() + BUSY_WAIT_US;
	int rc;
	for (;;) {
		rc = srv_exec_start(&s->x, session, q, r->client_fd, err);
		if (rc == 0)
			break;
		srv_exec_end(&s->x);
		if (rc != -EBUSY || srv_now_us() >= give_up) {
			free(s);
			return rc;
		}
		usleep(20000);
	}
	s->conv = conv;
	s->ctx = ctx;
	cr_buf_init(&s->out, 2 * SRV_EVENT_MAX);
	*out = s;
	return 0;
}

enum MHD_Result srv_cell_reply(struct srv_req *r, struct srv_cell_stream *s,
			       const char *content_type)
{
	srv_metrics_stream(1);
	return srv_reply_stream(r, 200, content_type, MHD_SIZE_UNKNOWN, cell_read, s, cell_release);
}
