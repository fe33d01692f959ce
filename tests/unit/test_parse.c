/* tests/unit/test_parse.c -- sizes, durations, numbers and mount specs: strict parsing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/parse.h"

static void test_sizes(void **state)
{
	(void)state;
	struct { const char *in; uint64_t want; } ok[] = {
		{"0", 0}, {"65536", 65536}, {"64K", 65536}, {"64k", 65536}, {"64KB", 65536},
		{"64KiB", 65536}, {"512M", 512ULL << 20}, {"512MiB", 512ULL << 20}, {"1G", 1ULL << 30},
		{"1.5G", 3ULL << 29}, {"2T", 2ULL << 40}, {"100B", 100}, {"1b", 1},
	};
	for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
		uint64_t v = 1234;
		struct cr_err err = {0};
		assert_int_equal(cr_parse_size(ok[i].in, &v, &err), 0);
		assert_int_equal(v, ok[i].want);
	}
	const char *bad[] = {"", "12QB", "-1", "1.5", "G", "1GG", " 1G", "1G ", "0x10", "1e3", "1.G",
			     "99999999999999999999T", "1Ki B", "+5"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		uint64_t v = 42;
		struct cr_err err = {0};
		assert_true(cr_parse_size(bad[i], &v, &err) < 0);
		assert_int_equal(v, 42); /* untouched on failure */
		assert_true(strlen(err.msg) > 0);
		if (bad[i][0])
			assert_non_null(strstr(err.msg, bad[i]));
	}
}

static void test_durations(void **state)
{
	(void)state;
	struct { const char *in; uint64_t want; } ok[] = {
		{"30", 30000}, {"1.5s", 1500}, {"500ms", 500}, {"2m", 120000}, {"1h", 3600000},
		{"0", 0}, {"0.001", 1},
	};
	for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
		uint64_t v = 0;
		assert_int_equal(cr_parse_duration(ok[i].in, &v, NULL), 0);
		assert_int_equal(v, ok[i].want);
	}
	const char *bad[] = {"", "-1", "soon", "1d", "1 s", "s", "1.5.2", "1e9"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		uint64_t v;
		assert_true(cr_parse_duration(bad[i], &v, NULL) < 0);
	}
}

static void test_numbers(void **state)
{
	(void)state;
	uint64_t v;
	double d;
	assert_int_equal(cr_parse_uint("64", 2, 100, &v, NULL), 0);
	assert_int_equal(v, 64);
	assert_int_equal(cr_parse_uint("1", 2, 100, &v, NULL), -ERANGE);
	assert_int_equal(cr_parse_uint("101", 2, 100, &v, NULL), -ERANGE);
	assert_int_equal(cr_parse_uint("-3", 0, 100, &v, NULL), -EINVAL);
	assert_int_equal(cr_parse_uint("99999999999999999999999", 0, UINT64_MAX, &v, NULL), -ERANGE);
	assert_int_equal(cr_parse_double("0.5", 0.01, 4, &d, NULL), 0);
	assert_true(d > 0.49 && d < 0.51);
	assert_int_equal(cr_parse_double("nan", 0, 4, &d, NULL), -EINVAL);
	assert_int_equal(cr_parse_double("5", 0, 4, &d, NULL), -ERANGE);
}

static void test_mount_specs(void **state)
{
	(void)state;
	char *h, *d;
	assert_int_equal(cr_parse_mount_spec("/srv/data:/data", &h, &d, NULL), 0);
	assert_string_equal(h, "/srv/data");
	assert_string_equal(d, "/data");
	free(h);
	free(d);
	assert_int_equal(cr_parse_mount_spec("/srv/data", &h, &d, NULL), 0);
	assert_string_equal(h, "/srv/data");
	assert_string_equal(d, "/srv/data");
	free(h);
	free(d);
	assert_true(cr_parse_mount_spec(":/data", &h, &d, NULL) < 0);
	assert_null(h);
	assert_true(cr_parse_mount_spec("/x:", &h, &d, NULL) < 0);
	assert_true(cr_parse_mount_spec("", &h, &d, NULL) < 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_mount_specs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
