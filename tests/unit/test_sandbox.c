/* tests/unit/test_sandbox.c -- the host-side, pure parts of the sandbox: the defaults table,
 * plan validation (nothing touches the host), exit-code mapping and the JSON result. */
#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/text.h"
#include "sandbox/contain.h"
#include "sandbox/result_json.h"

static char prog_true[] = "/bin/true";
static char *argv_true[] = {prog_true, NULL};

static int build(struct sbx_config *cfg, struct sbx_plan *plan, struct cr_err *err)
{
	if (!cfg->argv)
		cfg->argv = argv_true;
	return sbx_plan_build(cfg, plan, err);
}

static void test_defaults_table(void **state)
{
	(void)state;
	const struct sbx_limits *d = &sbx_limits_default;
	assert_int_equal(d->memory_bytes, 512ULL << 20);
	assert_int_equal(d->pids, 64);
	assert_int_equal(d->timeout_ms, 30000);
	assert_int_equal(d->tmp_bytes, 64ULL << 20);
	assert_int_equal(d->output_limit_bytes, 1ULL << 20);
	assert_int_equal(d->file_size_bytes, 64ULL << 20);
	assert_int_equal(d->nofile, 256);
	struct sbx_config cfg;
	sbx_config_init(&cfg);
	assert_memory_equal(&cfg.limits, d, sizeof *d);
	assert_int_not_equal(cfg.uid, 0);
}

static void test_plan_destinations(void **state)
{
	(void)state;
	struct sbx_plan *plan = malloc(sizeof *plan);
	struct sbx_config cfg;
	struct cr_err err;
	struct { const char *dest; int ok; } cases[] = {
		{"/data", 1}, {"/data/in.csv", 1}, {"/tmp/x", 1}, {"/srv/a/b", 1},
		{"/", 0}, {"/usr/share", 0}, {"/etc/passwd", 0}, {"/proc", 0}, {"/dev/x", 0},
		{"/output", 0}, {"/bin", 0}, {"/lib64/x", 0}, {"/tmp", 0}, {"relative", 0},
		{"/a/../etc", 0}, {"/a/./b", 0}, {"/a//b", 0}, {"/a/", 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		sbx_config_init(&cfg);
		sbx_config_add_mount(&cfg, "/usr/share/doc", cases[i].dest, false, &err);
		int r = build(&cfg, plan, &err);
		if (cases[i].ok && r < 0)
			fail_msg("%s refused: %s", cases[i].dest, err.msg);
		if (!cases[i].ok && r == 0)
			fail_msg("%s accepted", cases[i].dest);
	}
	/* the same destination twice */
	sbx_config_init(&cfg);
	sbx_config_add_mount(&cfg, "/usr/share/doc", "/data", false, &err);
	sbx_config_add_mount(&cfg, "/usr/share/man", "/data", false, &err);
	assert_true(build(&cfg, plan, &err) < 0);
	assert_non_null(strstr(err.msg, "twice"));
	free(plan);
}

static void test_plan_sources_and_limits(void **state)
{
	(void)state;
	struct sbx_plan *plan = malloc(sizeof *plan);
	struct sbx_config cfg;
	struct cr_err err;
	sbx_config_init(&cfg);
	sbx_config_add_mount(&cfg, "/nonexistent/x", "/data", false, &err);
	assert_int_equal(build(&cfg, plan, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "/nonexistent/x"));

	sbx_config_init(&cfg);
	sbx_config_add_mount(&cfg, "/dev/null", "/data", false, &err);
	assert_true(build(&cfg, plan, &err) < 0); /* devices are never exported */

	sbx_config_init(&cfg);
	cfg.output_dir = "/etc/hostname";
	assert_int_equal(build(&cfg, plan, &err), -ENOTDIR);

	sbx_config_init(&cfg);
	cfg.rootfs = "/nonexistent";
	assert_true(build(&cfg, plan, &err) < 0);

	sbx_config_init(&cfg);
	cfg.limits.memory_bytes = 1024;
	assert_true(build(&cfg, plan, &err) < 0);

	sbx_config_init(&cfg);
	cfg.uid = 0;
	if (geteuid() == 0)
		assert_true(build(&cfg, plan, &err) < 0); /* never as root */

	sbx_config_init(&cfg);
	char *noprog[] = {NULL};
	cfg.argv = noprog;
	assert_true(sbx_plan_build(&cfg, plan, &err) < 0);
	free(plan);
}

static void test_plan_environment(void **state)
{
	(void)state;
	struct sbx_plan *plan = malloc(sizeof *plan);
	struct sbx_config cfg;
	struct cr_err err;
	sbx_config_init(&cfg);
	assert_int_equal(sbx_config_add_env(&cfg, "LANG=C", &err), 0);
	assert_int_equal(sbx_config_add_env(&cfg, "X_1=a=b", &err), 0);
	assert_true(sbx_config_add_env(&cfg, "NOEQ", &err) < 0);
	assert_true(sbx_config_add_env(&cfg, "=v", &err) < 0);
	assert_true(sbx_config_add_env(&cfg, "1X=v", &err) < 0);
	assert_int_equal(build(&cfg, plan, &err), 0);
	int lang = 0, x = 0, path = 0;
	for (uint32_t i = 0; i < plan->envc; i++) {
		const char *e = plan->strings + plan->envp_off[i];
		lang += !strncmp(e, "LANG=", 5);
		x += !strcmp(e, "X_1=a=b");
		path += !strncmp(e, "PATH=", 5);
		if (!strncmp(e, "LANG=", 5))
			assert_string_equal(e, "LANG=C"); /* --env overrides the base set */
	}
	assert_int_equal(lang, 1);
	assert_int_equal(x, 1);
	assert_int_equal(path, 1);
	free(plan);
}

static void test_exit_codes(void **state)
{
	(void)state;
	struct sbx_result r = {0};
	r.status = SBX_OK;
	r.exit_code = 0;
	assert_int_equal(sbx_result_exit_code(&r), 0);
	r.status = SBX_NONZERO_EXIT;
	r.exit_code = 3;
	assert_int_equal(sbx_result_exit_code(&r), 3);
	r.status = SBX_SIGNALED;
	r.exit_code = -1;
	r.signal = 9;
	assert_int_equal(sbx_result_exit_code(&r), 137);
	r.status = SBX_TIMEOUT;
	assert_int_equal(sbx_result_exit_code(&r), 124);
	r.status = SBX_SANDBOX_ERROR;
	assert_int_equal(sbx_result_exit_code(&r), 125);
	for (int s = SBX_OK; s <= SBX_SANDBOX_ERROR; s++)
		assert_true(strlen(sbx_status_name((enum sbx_status)s)) > 1);
}

static void test_result_json(void **state)
{
	(void)state;
	struct sbx_result r;
	memset(&r, 0, sizeof r);
	cr_buf_init(&r.out, 64);
	cr_buf_init(&r.err, 64);
	cr_buf_append(&r.out, "caf\xc3\xa9\n", 6);
	cr_buf_append(&r.err, "\xff\xfe\x00x", 4);
	r.status = SBX_NONZERO_EXIT;
	r.exit_code = 2;
	r.err.dropped = 10;
	r.stderr_truncated = true;
	char fa[] = "a.png", fl[] = "link";
	struct sbx_file files[] = {{fa, 10, NULL}, {fl, 0, "symlink"}};
	r.files = files;
	r.n_files = 2;
	json_t *j = sbx_result_to_json(&r);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "status")), "nonzero_exit");
	assert_int_equal(json_integer_value(json_object_get(j, "exit_code")), 2);
	assert_true(json_is_null(json_object_get(j, "signal")));
	assert_string_equal(json_string_value(json_object_get(j, "stdout")), "caf\xc3\xa9\n");
	assert_string_equal(json_string_value(json_object_get(j, "stdout_encoding")), "utf-8");
	assert_string_equal(json_string_value(json_object_get(j, "stderr_encoding")), "base64");
	size_t n;
	const char *b64 = json_string_value(json_object_get(j, "stderr"));
	unsigned char *dec = cr_base64_decode(b64, strlen(b64), &n);
	assert_int_equal(n, 4);
	assert_memory_equal(dec, "\xff\xfe\x00x", 4);
	free(dec);
	assert_true(json_is_true(json_object_get(j, "stderr_truncated")));
	assert_int_equal(json_integer_value(json_object_get(j, "stderr_dropped_bytes")), 10);
	assert_int_equal(json_array_size(json_object_get(j, "files")), 1);
	assert_int_equal(json_array_size(json_object_get(j, "files_skipped")), 1);
	assert_true(json_is_null(json_object_get(j, "error")));
	json_decref(j);

	r.status = SBX_SANDBOX_ERROR;
	strcpy(r.error_step, "execve");
	r.error_errno = ENOENT;
	strcpy(r.error_msg, "execve x: No such file or directory");
	r.n_files = 0;
	j = sbx_result_to_json(&r);
	json_t *e = json_object_get(j, "error");
	assert_string_equal(json_string_value(json_object_get(e, "step")), "execve");
	assert_string_equal(json_string_value(json_object_get(e, "errno_name")), "ENOENT");
	json_decref(j);
	cr_buf_free(&r.out);
	cr_buf_free(&r.err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_table),
		cmocka_unit_test(test_plan_destinations),
		cmocka_unit_test(test_plan_sources_and_limits),
		cmocka_unit_test(test_plan_environment),
		cmocka_unit_test(test_exit_codes),
		cmocka_unit_test(test_result_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
