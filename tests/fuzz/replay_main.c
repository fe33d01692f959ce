/* tests/fuzz/replay_main.c -- a main() for libFuzzer-style harnesses built with gcc: replays a
 * corpus through LLVMFuzzerTestOneInput, so `make check` runs every saved input under the
 * sanitizers without clang's libFuzzer.
 *
 *   build/asan/fuzz/fuzz_llm_extract                     # tests/fuzz/corpus/fuzz_llm_extract/
 *   build/asan/fuzz/fuzz_llm_extract crash-123 dir/      # given files and directories
 *
 * Prints TAP: "ok N - <file>" per input and the plan "1..N" at the end; a crash is the
 * sanitizer's report and a non-zero exit.  The harness name is argv[0]'s basename; its default
 * corpus is looked up relative to the working directory, then to the repo root above
 * build/<variant>/fuzz/.  Each input is copied into a buffer of exactly its size, so reads past
 * the end are caught.
 */
#include <dirent.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

static int n_run;
static int n_bad;

static void run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	if (f) {
		for (;;) {
			if (len == cap) {
				cap = cap ? cap * 2 : 4096;
				uint8_t *nb = realloc(buf, cap);
				if (!nb) {
					free(buf);
					fclose(f);
					printf("not ok %d - %s # out of memory\n", ++n_run, path);
					n_bad++;
					return;
				}
				buf = nb;
			}
			size_t r = fread(buf + len, 1, cap - len, f);
			len += r;
			if (r == 0)
				break;
		}
		fclose(f);
	}
	if (!f) {
		printf("not ok %d - %s # cannot read\n", ++n_run, path);
		n_bad++;
		return;
	}
	/* exact-size copy: a read past the end is a heap overflow the sanitizer reports */
	uint8_t *exact = malloc(len ? len : 1);
	if (len)
		memcpy(exact, buf, len);
	free(buf);
	LLVMFuzzerTestOneInput(exact, len);
	free(exact);
	printf("ok %d - %s\n", ++n_run, path);
	fflush(stdout);
}

static int skip_name(const struct dirent *d)
{
	return d->d_name[0] != '.';
}

static void run_path(const char *path)
{
	struct stat st;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		struct dirent **names;
		int n = scandir(path, &names, skip_name, alphasort);
		if (n < 0) {
			printf("not ok %d - %s # cannot list\n", ++n_run, path);
			n_bad++;
			return;
		}
		for (int i = 0; i < n; i++) {
			char p[PATH_MAX];
			snprintf(p, sizeof p, "%s/%s", path, names[i]->d_name);
			struct stat es;
			if (stat(p, &es) == 0 && S_ISREG(es.st_mode))
				run_file(p);
			free(names[i]);
		}
		free(names);
		return;
	}
	run_file(path);
}

int main(int argc, char **argv)
{
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	const char *name = strrchr(argv[0], '/');
	name = name ? name + 1 : argv[0];
	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			run_path(argv[i]);
	} else {
		char dir[PATH_MAX];
		snprintf(dir, sizeof dir, "tests/fuzz/corpus/%s", name);
		if (access(dir, R_OK) != 0) {
			char exe[PATH_MAX];
			ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
			exe[n > 0 ? n : 0] = '\0';
			for (int up = 0; up < 4; up++) { /* strip name, fuzz, <variant>, build */
				char *s = strrchr(exe, '/');
				if (s)
					*s = '\0';
			}
			snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/%s", exe, name);
		}
		if (access(dir, R_OK) != 0) {
			printf("1..0 # SKIP no corpus for %s\n", name);
			return 0;
		}
		run_path(dir);
	}
	printf("1..%d\n", n_run);
	return n_bad ? 1 : 0;
}
