/* zygote/runner_blob.c -- the runner's source, compiled into corral-zygote so the session
 * code cannot be swapped on disk after the binary was built. */
__asm__(".section .rodata\n"
	".global corral_runner_py\n"
	".type corral_runner_py, @object\n"
	".balign 16\n"
	"corral_runner_py:\n"
	".incbin \"src/engine/runner.py\"\n"
	"corral_runner_py_end:\n"
	".byte 0\n"
	".global corral_runner_py_len\n"
	".type corral_runner_py_len, @object\n"
	".balign 4\n"
	"corral_runner_py_len:\n"
	".int corral_runner_py_end - corral_runner_py\n"
	".previous\n");
