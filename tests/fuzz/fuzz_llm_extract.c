/* fuzz_llm_extract.c -- llm_extract_code over arbitrary model text (untrusted input).
 * Invariants: never more than LLM_EXTRACT_MAX_BLOCKS blocks, each NUL-terminated at len, within
 * the size cap, and every block's bytes come from the input's lines. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/llm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct llm_code_blocks b;
	int n = llm_extract_code((const char *)data, size, &b, NULL);
	if (n < 0)
		return 0; /* out of memory */
	if ((size_t)n != b.n || b.n > LLM_EXTRACT_MAX_BLOCKS)
		abort();
	for (size_t i = 0; i < b.n; i++) {
		const struct llm_code_block *c = &b.v[i];
		if (!c->code || c->code[c->len] != '\0' || c->len > LLM_EXTRACT_MAX_BLOCK_BYTES ||
		    c->len > size || c->line == 0 || (c->len && c->code[c->len - 1] != '\n'))
			abort();
		if (memchr(c->code, '\r', c->len) && !memchr(data, '\r', size))
			abort();
	}
	llm_code_blocks_free(&b);
	return 0;
}
