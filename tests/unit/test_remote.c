/* tests/unit/test_remote.c -- backend/remote.c (the C client of `corral serve`) against an
 * in-process fake of the native API on libmicrohttpd: create (with a 429 retry and the data
 * file upload), execute read as NDJSON, download (binary, missing, too big), escaping, cleanup,
 * and transport errors.  The real server is exercised end to end by test_serve.py. */
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "backend/backend.h"

#define KEY "testkey-0123456789abcdef"
#define SID "sb_0123456789abcdef"

static struct {
	struct MHD_Daemon *d;
	char url[64];
	pthread_mutex_t lock;
	int creates_to_refuse;
	char log[64][256]; /* "METHOD URL" of each request */
	int n_log;
	char upload_url[256];
	char upload[4096];
	size_t upload_len;
	char exec_body[4096];
} fake = {.lock = PTHREAD_MUTEX_INITIALIZER};

struct req {
	char body[4096];
	size_t len;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
			     const void *body, size_t len)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (type)
		MHD_add_response_header(r, "Content-Type", type);
	if (status == 429)
		MHD_add_response_header(r, "Retry-After", "1");
	enum MHD_Result ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *data,
			      size_t *size, void **con_cls)
{
	(void)cls;
	(void)version;
	struct req *q = *con_cls;
	if (!q) {
		*con_cls = calloc(1, sizeof *q);
		return MHD_YES;
	}
	if (*size) {
		size_t n = *size < sizeof q->body - 1 - q->len ? *size : sizeof q->body - 1 - q->len;
		memcpy(q->body + q->len, data, n);
		q->len += n;
		*size = 0;
		return MHD_YES;
	}
	pthread_mutex_lock(&fake.lock);
	if (fake.n_log < 64)
		snprintf(fake.log[fake.n_log++], sizeof fake.log[0], "%s %s", method, url);
	pthread_mutex_unlock(&fake.lock);
	const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	static const char ERR401[] = "{\"error\":{\"code\":\"unauthorized\",\"message\":\"no\"}}";
	if (!auth || strcmp(auth, "Bearer " KEY))
		return reply(c, 401, "application/json", ERR401, sizeof ERR401 - 1);
	if (!strcmp(method, "POST") && !strcmp(url, "/v1/sandboxes")) {
		if (fake.creates_to_refuse > 0) {
			fake.creates_to_refuse--;
			static const char E[] = "{\"error\":{\"code\":\"capacity\",\"message\":\"full\"}}";
			return reply(c, 429, "application/json", E, sizeof E - 1);
		}
		static const char OK[] = "{\"id\":\"" SID "\",\"mode\":\"stateful\"}";
		return reply(c, 201, "application/json", OK, sizeof OK - 1);
	}
	if (!strcmp(method, "PUT")) {
		snprintf(fake.upload_url, sizeof fake.upload_url, "%s", url);
		memcpy(fake.upload, q->body, q->len);
		fake.upload_len = q->len;
		return reply(c, 201, "application/json", "{}", 2);
	}
	if (!strcmp(method, "POST") && strstr(url, "/execute")) {
		snprintf(fake.exec_body, sizeof fake.exec_body, "%.*s", (int)q->len, q->body);
		static const char EV[] =
			"{\"type\":\"stdout\",\"text\":\"hi\\n\"}\n"
			"{\"type\":\"keepalive\"}\n"
			"{\"type\":\"stderr\",\"text\":\"/w==\",\"encoding\":\"base64\"}\n"
			"{\"type\":\"result\",\"data\":{\"text/plain\":\"3\"}}\n"
			"{\"type\":\"error\",\"name\":\"E\",\"value\":\"v\",\"traceback\":\"\"}\n"
			"{\"type\":\"final\",\"status\":\"error\",\"duration_ms\":1.5,\"cpu_ms\":1,"
			"\"peak_memory_bytes\":4096,\"session_alive\":true,\"cell\":1}\n";
		return reply(c, 200, "application/x-ndjson", EV, sizeof EV - 1);
	}
	if (!strcmp(method, "GET") && strstr(url, "/files/home/user/out.bin")) {
		char all[256];
		for (int i = 0; i < 256; i++)
			all[i] = (char)i;
		return reply(c, 200, "application/octet-stream", all, sizeof all);
	}
	if (!strcmp(method, "DELETE") && !strcmp(url, "/v1/sandboxes/" SID))
		return reply(c, 204, NULL, "", 0);
	static const char NF[] = "{\"error\":{\"code\":\"not_found\",\"message\":\"no such file\"}}";
	return reply(c, 404, "application/json", NF, sizeof NF - 1);
}

static void done(void *cls, struct MHD_Connection *c, void **con_cls,
		 enum MHD_RequestTerminationCode why)
{
	(void)cls;
	(void)c;
	(void)why;
	free(*con_cls);
	*con_cls = NULL;
}

static int setup(void **state)
{
	(void)state;
	fake.d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
				  MHD_USE_POLL, 0, NULL, NULL, handle, NULL,
				  MHD_OPTION_NOTIFY_COMPLETED, done, NULL, MHD_OPTION_END);
	if (!fake.d)
		return -1;
	const union MHD_DaemonInfo *i = MHD_get_daemon_info(fake.d, MHD_DAEMON_INFO_BIND_PORT);
	snprintf(fake.url, sizeof fake.url, "http://127.0.0.1:%u/", (unsigned)i->port);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	MHD_stop_daemon(fake.d);
	return 0;
}

static bool logged(const char *what)
{
	for (int i = 0; i < fake.n_log; i++)
		if (!strcmp(fake.log[i], what))
			return true;
	return false;
}

static void test_round_trip(void **state)
{
	(void)state;
	char path[] = "/tmp/corral-remote-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "a,b\n1,2\n", 8), 8);
	close(fd);
	struct bk_opts o;
	bk_opts_init(&o);
	o.memory_bytes = 256u << 20;
	o.data_files[0] = path;
	o.n_data_files = 1;
	fake.creates_to_refuse = 1; /* the first create is told to come back (429) */
	fake.n_log = 0;
	struct bk *b = NULL;
	struct cr_err err = {0};
	assert_int_equal(bk_create_remote(fake.url, KEY, &o, &b, &err), 0);
	unlink(path);
	assert_int_equal(strncmp(bk_describe(b), fake.url, strlen(fake.url) - 1), 0); /* no '/' */
	assert_null(strstr(bk_describe(b), KEY));
	char want[256];
	snprintf(want, sizeof want, "/v1/sandboxes/" SID "/files/data/%s", strrchr(path, '/') + 1);
	assert_string_equal(fake.upload_url, want);
	assert_int_equal(fake.upload_len, 8);
	assert_memory_equal(fake.upload, "a,b\n1,2\n", 8);

	struct bk_result r;
	bk_result_init(&r);
	assert_int_equal(bk_execute(b, "print('hi')", 2500, &r, &err), 0);
	assert_non_null(strstr(fake.exec_body, "\"code\""));
	assert_non_null(strstr(fake.exec_body, "2.5"));
	assert_int_equal(r.out.len, 3);
	assert_memory_equal(r.out.data, "hi\n", 3);
	assert_int_equal(r.err.len, 1);
	assert_int_equal((unsigned char)r.err.data[0], 0xff);
	assert_int_equal(json_array_size(r.events), 2); /* result and error, not the keepalive */
	assert_int_equal(r.status, BK_ERROR);
	assert_true(r.session_alive);
	assert_int_equal(r.duration_us, 1500);
	assert_int_equal(r.peak_memory_bytes, 4096);
	bk_result_free(&r);

	struct cr_buf out;
	cr_buf_init(&out, 1 << 20);
	assert_int_equal(bk_download_file(b, "/home/user/out.bin", &out, &err), 0);
	assert_int_equal(out.len, 256);
	for (int i = 0; i < 256; i++)
		assert_int_equal((unsigned char)out.data[i], i);
	cr_buf_free(&out);
	cr_buf_init(&out, 100); /* too small */
	assert_int_equal(bk_download_file(b, "/home/user/out.bin", &out, &err), -EFBIG);
	assert_int_equal(out.len, 0);
	cr_buf_free(&out);
	cr_buf_init(&out, 1 << 20);
	assert_int_equal(bk_download_file(b, "/home/user/missing", &out, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "no such file"));
	assert_int_equal(out.len, 0);
	cr_buf_free(&out);

	assert_int_equal(bk_upload_file(b, "/home/user/a b#?.txt", "x", 1, &err), 0);
	/* the fake decodes the URL: '#' and '?' arrived as part of the path, so they were escaped */
	assert_string_equal(fake.upload_url, "/v1/sandboxes/" SID "/files/home/user/a b#?.txt");
	bk_cleanup(b);
	assert_true(logged("DELETE /v1/sandboxes/" SID));
	assert_true(logged("POST /v1/sandboxes"));
}

static void test_errors(void **state)
{
	(void)state;
	struct bk_opts o;
	bk_opts_init(&o);
	struct bk *b = NULL;
	struct cr_err err = {0};
	assert_int_equal(bk_create_remote(fake.url, "wrong-key-0123456789", &o, &b, &err), -EACCES);
	assert_null(strstr(err.msg, "wrong-key"));
	assert_int_equal(bk_create_remote("ftp://x/", KEY, &o, &b, &err), -EINVAL);
	assert_int_equal(bk_create_remote(fake.url, "", &o, &b, &err), -EINVAL);
	assert_int_equal(bk_create_remote(fake.url, "a\r\nX-Evil: 1", &o, &b, &err), -EINVAL);
	/* nothing listens there */
	assert_true(bk_create_remote("http://127.0.0.1:1", KEY, &o, &b, &err) < 0);
	assert_non_null(strstr(err.msg, "127.0.0.1:1"));
}

/* A descriptor opened by the caller (before a privilege drop) is what gets uploaded, under the
 * name the caller chose, from offset 0 whatever the descriptor's offset, which is left alone. */
static void test_upload_from_descriptor(void **state)
{
	(void)state;
	char path[] = "/tmp/corral-remote-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "x,y\n3,4\n5,6\n", 12), 12);
	assert_int_equal(lseek(fd, 4, SEEK_SET), 4);
	unlink(path); /* only the descriptor is left */
	struct bk_opts o;
	bk_opts_init(&o);
	assert_int_equal(o.data_fds[0], -1);
	assert_int_equal(o.data_fds[BK_MAX_DATA_FILES - 1], -1);
	o.data_files[0] = path;
	o.data_fds[0] = fd;
	o.data_names[0] = "sales 2026.csv";
	o.n_data_files = 1;
	struct bk *b = NULL;
	struct cr_err err = {0};
	assert_int_equal(bk_create_remote(fake.url, KEY, &o, &b, &err), 0);
	assert_string_equal(fake.upload_url, "/v1/sandboxes/" SID "/files/data/sales 2026.csv");
	assert_int_equal(fake.upload_len, 12);
	assert_memory_equal(fake.upload, "x,y\n3,4\n5,6\n", 12);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 4);
	bk_cleanup(b);
	assert_true(fcntl(fd, F_GETFD) >= 0); /* still open: the descriptor is borrowed */
	close(fd);

	bk_opts_init(&o);
	o.data_files[0] = "/etc/hostname";
	o.data_names[0] = "../evil";
	o.n_data_files = 1;
	fake.n_log = 0;
	assert_int_equal(bk_create_remote(fake.url, KEY, &o, &b, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "not a usable file name"));
	assert_true(logged("DELETE /v1/sandboxes/" SID)); /* the half-made sandbox is deleted */

	assert_int_equal(bk_remote_url_check("http://127.0.0.1:7070/", &err), 0);
	assert_int_equal(bk_remote_url_check("https://user:pw@host:1/prefix?q=1", &err), 0);
	assert_int_equal(bk_remote_url_check("ftp://host", &err), -EINVAL);
	assert_int_equal(bk_remote_url_check("", &err), -EINVAL);
	assert_int_equal(bk_remote_url_check("not a url", &err), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_upload_from_descriptor),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
