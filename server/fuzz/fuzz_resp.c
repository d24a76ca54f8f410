/*
 * libFuzzer target for the RESP request parser (server/resp.c).
 *
 * The input's first byte picks the parser's mode (the unauthenticated
 * limits or not) and the read sizes; the rest is the byte stream of a
 * connection. The harness feeds it the way server/net.c does (append a
 * read to a buffer, parse every complete request, drop the consumed
 * prefix and rebase), once in reads of the chosen sizes and once whole,
 * and checks:
 *   - every argument lies inside the bytes the parser consumed;
 *   - both feedings give the same requests, and the same error if any (an
 *     incremental parser must not depend on how the stream was cut);
 *   - the request in progress never holds more than a bounded number of
 *     bytes beyond what the limits allow (no runaway buffering);
 *   - replies built from the arguments are well formed (the writer).
 * ASan/UBSan catch the rest. Bulks are capped at 4 KiB here so the bulk
 * length limit is reachable.
 */
#include "resp.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BULK_MAX 4096

struct run {
	uint64_t hash; /* of every request's arguments, in order */
	size_t reqs;
	const char *err;
};

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

static void run(const uint8_t *data, size_t size, int unauth,
                unsigned step_seed, struct run *r)
{
	resp_parser p;
	resp_parser_init(&p, BULK_MAX);
	p.unauth = unauth;
	char *buf = NULL;
	size_t len = 0, cap = 0, off = 0;
	unsigned seed = step_seed;
	resp_out o = { .proto = 2 + (int)(step_seed & 1) };
	r->hash = 0xcbf29ce484222325ull;
	r->reqs = 0;
	r->err = NULL;
	while (off < size && r->err == NULL) {
		size_t step = size - off;
		if (step_seed != 0) {
			seed = seed * 1103515245u + 12345u;
			step = 1 + (seed >> 16) % 67;
			if (step > size - off)
				step = size - off;
		}
		if (cap - len < step) {
			cap = (len + step) * 2;
			buf = realloc(buf, cap);
			if (buf == NULL)
				abort();
		}
		memcpy(buf + len, data + off, step);
		len += step;
		off += step;
		for (;;) {
			const char *err;
			int rc = resp_parse(&p, buf, len, &err);
			if (rc == RESP_MORE)
				break;
			if (rc == RESP_NOMEM)
				abort();
			if (rc == RESP_ERR) {
				if (err == NULL || strncmp(err,
				                           "ERR Protocol "
				                           "error: ",
				                           20) != 0)
					abort();
				r->err = err;
				break;
			}
			if (p.pos > len || p.start > p.pos)
				abort();
			for (size_t i = 0; i < p.argc; i++) {
				if (p.argv[i].off < p.start ||
				    p.argv[i].off + p.argv[i].len > p.pos)
					abort();
				r->hash = mix(r->hash, &p.argv[i].len,
				              sizeof(size_t));
				r->hash = mix(r->hash, buf + p.argv[i].off,
				              p.argv[i].len);
				resp_bulk(&o, buf + p.argv[i].off,
				          p.argv[i].len);
			}
			r->hash = mix(r->hash, "|", 1);
			r->reqs++;
			resp_array(&o, p.argc);
			resp_map(&o, p.argc);
			resp_null(&o);
			o.sent = o.len;
			resp_out_compact(&o);
			resp_parser_next(&p);
		}
		/* What is buffered for the request in progress stays within
		 * what the limits allow. */
		size_t held = len - p.start;
		if (r->err == NULL && held > RESP_INLINE_MAX + 67 &&
		    !p.in_mbulk)
			abort();
		if (p.start > 0) {
			memmove(buf, buf + p.start, len - p.start);
			len -= p.start;
			resp_parser_rebase(&p, p.start);
		}
	}
	resp_out_free(&o);
	resp_parser_free(&p);
	free(buf);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int unauth = data[0] & 1;
	unsigned seed = (unsigned)data[0] | 1u;
	struct run a, b;
	run(data + 1, size - 1, unauth, seed, &a);
	run(data + 1, size - 1, unauth, 0, &b);
	/* A stream that ends in an error: the requests before it agree; the
	 * error itself agrees. */
	if (a.reqs != b.reqs || a.hash != b.hash)
		abort();
	if ((a.err == NULL) != (b.err == NULL) ||
	    (a.err && strcmp(a.err, b.err) != 0))
		abort();
	return 0;
}
