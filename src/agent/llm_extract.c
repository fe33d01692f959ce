/* agent/llm_extract.c -- fenced Python code in a model's text (the no-tool-calling fallback).
 *
 * Parses untrusted text: one forward pass over lines, no recursion, no backtracking; every
 * index is checked against len; output bounded by LLM_EXTRACT_MAX_BLOCKS x _MAX_BLOCK_BYTES.
 * Fence rules are CommonMark's, simplified: an opening fence is up to 3 spaces, then 3 or more
 * ` or ~, then an info string (for ` fences without any `); the block ends at a line of up to
 * 3 spaces, the same character repeated at least as often, and nothing but spaces or tabs.
 * Content lines lose up to as many leading spaces as the opening fence had.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agent/llm.h"
#include "core/buf.h"

enum kind { K_NOT_FENCE, K_OTHER, K_PYTHON, K_UNTAGGED };

struct span {
	size_t from, to; /* content: [from, to) of the text, whole lines */
	size_t indent;
	size_t line;
};

struct line {
	size_t start, end; /* [start, end) without the line ending */
	size_t next;       /* start of the next line */
};

static struct line line_at(const char *t, size_t len, size_t pos)
{
	struct line l = {pos, pos, pos};
	const char *nl = memchr(t + pos, '\n', len - pos);
	l.end = nl ? (size_t)(nl - t) : len;
	l.next = nl ? l.end + 1 : len;
	if (l.end > l.start && t[l.end - 1] == '\r')
		l.end--;
	return l;
}

/* Leading spaces (at most 3) and the fence run; 0 when this is not a fence line. */
static size_t fence_run(const char *t, const struct line *l, size_t *indent, char *ch)
{
	size_t p = l->start;
	while (p < l->end && t[p] == ' ' && p - l->start < 4)
		p++;
	if (p - l->start > 3 || p >= l->end || (t[p] != '`' && t[p] != '~'))
		return 0;
	*indent = p - l->start;
	*ch = t[p];
	size_t q = p;
	while (q < l->end && t[q] == *ch)
		q++;
	return q - p >= 3 ? q - p : 0;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

static enum kind info_kind(const char *t, size_t from, size_t to, char ch)
{
	while (from < to && is_space(t[from]))
		from++;
	while (to > from && is_space(t[to - 1]))
		to--;
	if (ch == '`' && memchr(t + from, '`', to - from))
		return K_NOT_FENCE; /* a ` in a ` fence's info string: not a fence */
	if (from == to)
		return K_UNTAGGED;
	size_t w = from;
	while (w < to && !is_space(t[w]) && t[w] != '{')
		w++;
	size_t n = w - from;
	static const char *const names[] = {"python", "py", "python3"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (n == strlen(names[i]) && strncasecmp(t + from, names[i], n) == 0)
			return K_PYTHON;
	return K_OTHER;
}

static bool is_closing(const char *t, const struct line *l, char ch, size_t min_run)
{
	size_t indent;
	char c;
	size_t run = fence_run(t, l, &indent, &c);
	if (!run || c != ch || run < min_run)
		return false;
	for (size_t p = l->start + indent + run; p < l->end; p++)
		if (!is_space(t[p]))
			return false;
	return true;
}

/* Copies a span's lines, dropping up to `indent` leading spaces each; LF endings. */
static int materialise(const char *t, const struct span *s, struct llm_code_block *out)
{
	struct cr_buf b;
	cr_buf_init(&b, LLM_EXTRACT_MAX_BLOCK_BYTES);
	bool blank = true;
	for (size_t pos = s->from; pos < s->to;) {
		struct line l = line_at(t, s->to, pos);
		size_t p = l.start;
		while (p < l.end && p - l.start < s->indent && t[p] == ' ')
			p++;
		for (size_t i = p; i < l.end && blank; i++)
			blank = is_space(t[i]);
		if (cr_buf_append(&b, t + p, l.end - p) < 0 || cr_buf_append(&b, "\n", 1) < 0) {
			cr_buf_free(&b);
			return -E2BIG;
		}
		pos = l.next;
	}
	if (blank) {
		cr_buf_free(&b);
		return 1; /* nothing to run: skipped */
	}
	if (!b.data && cr_buf_append(&b, "", 0) < 0)
		return -ENOMEM;
	out->code = cr_buf_steal(&b, &out->len);
	return out->code ? 0 : -ENOMEM;
}

int llm_extract_code(const char *text, size_t len, struct llm_code_blocks *out,
		     struct cr_err *err)
{
	memset(out, 0, sizeof *out);
	if (!text)
		return 0;
	/* Spans of python-tagged and untagged blocks, the first MAX of each. */
	struct span py[LLM_EXTRACT_MAX_BLOCKS], un[LLM_EXTRACT_MAX_BLOCKS];
	size_t npy = 0, nun = 0, drop_py = 0, drop_un = 0;

	size_t pos = 0, lineno = 0;
	while (pos < len) {
		struct line l = line_at(text, len, pos);
		lineno++;
		pos = l.next;
		size_t indent;
		char ch;
		size_t run = fence_run(text, &l, &indent, &ch);
		if (!run)
			continue;
		enum kind k = info_kind(text, l.start + indent + run, l.end, ch);
		if (k == K_NOT_FENCE)
			continue;
		/* Inside the fence: find its closing line. */
		struct span s = {.from = pos, .indent = indent, .line = lineno};
		bool closed = false;
		while (pos < len) {
			struct line c = line_at(text, len, pos);
			lineno++;
			pos = c.next;
			if (is_closing(text, &c, ch, run)) {
				s.to = c.start;
				closed = true;
				break;
			}
		}
		if (!closed)
			break; /* unterminated: not a block, and it swallowed the rest */
		if (k == K_PYTHON) {
			if (npy < LLM_EXTRACT_MAX_BLOCKS)
				py[npy++] = s;
			else
				drop_py++;
		} else if (k == K_UNTAGGED) {
			if (nun < LLM_EXTRACT_MAX_BLOCKS)
				un[nun++] = s;
			else
				drop_un++;
		}
	}

	const struct span *v = npy ? py : un;
	size_t n = npy ? npy : nun;
	out->dropped = npy ? drop_py : drop_un;
	if (n == 0)
		return 0;
	out->v = calloc(n, sizeof *out->v);
	if (!out->v)
		return cr_fail(err, ENOMEM, "code blocks");
	for (size_t i = 0; i < n; i++) {
		struct llm_code_block *b = &out->v[out->n];
		int r = materialise(text, &v[i], b);
		if (r == -ENOMEM) {
			llm_code_blocks_free(out);
			return cr_fail(err, ENOMEM, "code blocks");
		}
		if (r == -E2BIG) {
			out->dropped++;
			continue;
		}
		if (r > 0)
			continue;
		b->line = v[i].line;
		b->tagged = npy > 0;
		out->n++;
	}
	return (int)out->n;
}

void llm_code_blocks_free(struct llm_code_blocks *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->n; i++)
		free(b->v[i].code);
	free(b->v);
	memset(b, 0, sizeof *b);
}
