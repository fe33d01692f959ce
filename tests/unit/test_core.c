/* tests/unit/test_core.c -- buffers, text, safe paths: the pieces untrusted input meets first. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/path.h"
#include "core/text.h"

static void test_buf_caps(void **state)
{
	(void)state;
	struct cr_buf b;
	cr_buf_init(&b, 10);
	assert_int_equal(cr_buf_append(&b, "hello", 5), 0);
	assert_int_equal(cr_buf_append(&b, "world!", 6), -E2BIG); /* all or nothing */
	assert_int_equal(b.len, 5);
	assert_int_equal(cr_buf_append_trunc(&b, "world!", 6), 5);
	assert_int_equal(b.len, 10);
	assert_int_equal(b.dropped, 1);
	assert_memory_equal(b.data, "helloworld", 11); /* NUL-terminated */
	assert_int_equal(cr_buf_append_trunc(&b, "more", 4), 0);
	assert_int_equal(b.dropped, 5);
	cr_buf_consume(&b, 5);
	assert_string_equal(b.data, "world");
	size_t n;
	char *p = cr_buf_steal(&b, &n);
	assert_int_equal(n, 5);
	free(p);
	assert_int_equal(b.len, 0);
	assert_int_equal(cr_buf_printf(&b, "%d", 123456), 0);
	assert_int_equal(cr_buf_printf(&b, "%s", "toolong"), -E2BIG);
	cr_buf_free(&b);
}

static void test_utf8(void **state)
{
	(void)state;
	assert_true(cr_utf8_valid("plain ascii", 11));
	assert_true(cr_utf8_valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14));
	assert_true(cr_utf8_valid("a\0b", 3));
	assert_false(cr_utf8_valid("\xff", 1));
	assert_false(cr_utf8_valid("\xc0\xaf", 2));         /* overlong '/' */
	assert_false(cr_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
	assert_false(cr_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
	assert_false(cr_utf8_valid("\xe2\x82", 2));         /* truncated */
	assert_int_equal(cr_utf8_clip("ab\xe2\x82", 4), 2);
	assert_int_equal(cr_utf8_clip("ab\xe2\x82\xac", 5), 5);
	assert_int_equal(cr_utf8_clip("abc", 3), 3);
}

static void test_base64(void **state)
{
	(void)state;
	unsigned char all[256];
	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	for (size_t n = 0; n <= 256; n += 1) {
		size_t elen, dlen;
		char *e = cr_base64_encode(all, n, &elen);
		assert_non_null(e);
		assert_int_equal(elen, (n + 2) / 3 * 4);
		unsigned char *d = cr_base64_decode(e, elen, &dlen);
		assert_non_null(d);
		assert_int_equal(dlen, n);
		assert_memory_equal(d, all, n);
		free(e);
		free(d);
	}
	char *e = cr_base64_encode("foobar", 6, NULL);
	assert_string_equal(e, "Zm9vYmFy");
	free(e);
	assert_null(cr_base64_decode("Zm9", 3, NULL));
	assert_null(cr_base64_decode("Zm9v!mFy", 8, NULL));
	assert_null(cr_base64_decode("Zg==Zg==", 8, NULL));
	assert_true(cr_consttime_eq("abc", 3, "abc", 3));
	assert_false(cr_consttime_eq("abc", 3, "abd", 3));
	assert_false(cr_consttime_eq("abc", 3, "abcd", 4));
}

static char tmpdir[64];

static int setup_tree(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof tmpdir, "/tmp/corral-path-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	char p[256];
	snprintf(p, sizeof p, "%s/inside", tmpdir);
	mkdir(p, 0755);
	snprintf(p, sizeof p, "%s/inside/file", tmpdir);
	close(open(p, O_WRONLY | O_CREAT, 0644));
	snprintf(p, sizeof p, "%s/inside/escape", tmpdir);
	if (symlink("/etc/passwd", p) < 0)
		return -1;
	snprintf(p, sizeof p, "%s/inside/sub", tmpdir);
	if (symlink("file", p) < 0) /* a symlink that stays inside is refused too */
		return -1;
	snprintf(p, sizeof p, "%s/inside/dirlink", tmpdir);
	if (symlink("/etc", p) < 0)
		return -1;
	return 0;
}

static int teardown_tree(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void check_beneath(bool fallback)
{
	cr_path_force_fallback(fallback);
	char p[256];
	snprintf(p, sizeof p, "%s/inside", tmpdir);
	int root = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(root >= 0);
	struct cr_err err;
	int fd = cr_open_beneath(root, "file", O_RDONLY, 0, &err);
	assert_true(fd >= 0);
	close(fd);
	const char *refused[] = {"../inside/file", "/etc/passwd", "escape", "sub", "dirlink/passwd",
				 "./file", "a//b", "", "x/.."};
	for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
		fd = cr_open_beneath(root, refused[i], O_RDONLY, 0, &err);
		if (fd >= 0)
			fail_msg("'%s' was opened (fallback=%d)", refused[i], fallback);
	}
	/* creating through a symlinked directory must not create outside */
	fd = cr_mkdir_beneath(root, "dirlink/new", 0755, &err);
	assert_true(fd < 0);
	struct stat st;
	assert_int_equal(stat("/etc/new", &st), -1);
	fd = cr_mkdir_beneath(root, "made/deep/er", 0755, &err);
	assert_true(fd >= 0);
	close(fd);
	snprintf(p, sizeof p, "%s/inside/made/deep/er", tmpdir);
	assert_int_equal(stat(p, &st), 0);
	fd = cr_open_beneath(root, "made/deep/er/f", O_WRONLY | O_CREAT, 0600, &err);
	assert_true(fd >= 0);
	close(fd);
	close(root);
	cr_path_force_fallback(false);
}

static void test_open_beneath_openat2(void **state)
{
	(void)state;
	assert_true(cr_have_openat2());
	check_beneath(false);
}

static void test_open_beneath_fallback(void **state)
{
	(void)state;
	check_beneath(true);
}

static void test_err_convention(void **state)
{
	(void)state;
	struct cr_err err = {0};
	assert_int_equal(cr_fail(&err, ENOENT, "open %s", "x"), -ENOENT);
	assert_int_equal(err.code, ENOENT);
	assert_string_equal(err.msg, "open x: No such file or directory");
	assert_int_equal(cr_wrap(&err, "loading %d", 3), -ENOENT);
	assert_string_equal(err.msg, "loading 3: open x: No such file or directory");
	assert_int_equal(cr_failx(&err, 0, "bad input"), -EINVAL);
	assert_string_equal(err.msg, "bad input");
	assert_int_equal(cr_fail(NULL, EPERM, "x"), -EPERM);
	char big[600];
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	cr_failx(&err, EINVAL, "%s", big);
	assert_int_equal(strlen(err.msg), CR_ERR_MSG_MAX - 1); /* bounded, terminated */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_caps),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_err_convention),
		cmocka_unit_test_setup_teardown(test_open_beneath_openat2, setup_tree, teardown_tree),
		cmocka_unit_test_setup_teardown(test_open_beneath_fallback, setup_tree, teardown_tree),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
