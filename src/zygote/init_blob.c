/* zygote/init_blob.c -- the static corral-init program (src/init/), compiled into
 * corral-zygote, which copies it into a sealed memfd at start: what each session's init execs
 * is fixed when the binary is built, and needs no file inside the sandbox's root. */
#ifndef CORRAL_INIT_BIN
#error "CORRAL_INIT_BIN: the Makefile passes the path of the built corral-init"
#endif
__asm__(".section .rodata\n"
	".global corral_init_elf\n"
	".type corral_init_elf, @object\n"
	".balign 16\n"
	"corral_init_elf:\n"
	".incbin \"" CORRAL_INIT_BIN "\"\n"
	"corral_init_elf_end:\n"
	".global corral_init_elf_len\n"
	".type corral_init_elf_len, @object\n"
	".balign 4\n"
	"corral_init_elf_len:\n"
	".int corral_init_elf_end - corral_init_elf\n"
	".previous\n");
