#include "v1log.h"

#include "dt.h"
#include "internal.h" /* dskvs__crc32c */

#include <stdlib.h>
#include <string.h>

static void put16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}
static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}
static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static unsigned char *grow(struct v1log *l, size_t n)
{
	if (l->len + n > l->cap) {
		size_t cap = l->cap ? l->cap : 4096;
		while (cap < l->len + n)
			cap *= 2;
		unsigned char *p = realloc(l->buf, cap);
		DT_CHECK(p != NULL, "out of memory");
		l->buf = p;
		l->cap = cap;
	}
	unsigned char *at = l->buf + l->len;
	l->len += n;
	return at;
}

static void file_hdr(unsigned char *p)
{
	memset(p, 0, V1_FILE_HDR);
	memcpy(p, "DSKVSLOG", 8);
	put16(p + 8, 1);
	put16(p + 10, 0);
	put32(p + 12, 0);
	put64(p + 16, 1700000000000000000ull); /* creation time, ns */
	put32(p + 24, 0);
	put32(p + 28, dskvs__crc32c(0, p, 28));
}

/* A record header; the data checksum is given. */
static void rec_hdr(unsigned char *p, uint32_t dcrc, unsigned op,
                    unsigned flags, uint32_t klen, uint32_t vlen,
                    uint32_t batch, uint64_t seq)
{
	memset(p, 0, V1_REC_HDR);
	put32(p + 4, dcrc);
	p[8] = (unsigned char)op;
	p[9] = (unsigned char)flags;
	put16(p + 10, 0);
	put32(p + 12, klen);
	put32(p + 16, vlen);
	put32(p + 20, batch);
	put64(p + 24, seq);
	put32(p, dskvs__crc32c(0, p + 4, V1_REC_HDR - 4));
}

void v1_init(struct v1log *l)
{
	memset(l, 0, sizeof(*l));
	file_hdr(grow(l, V1_FILE_HDR));
}

void v1_rec(struct v1log *l, unsigned op, unsigned flags, uint32_t batch,
            const char *key, const void *val, size_t vlen, uint64_t seq)
{
	size_t klen = strlen(key);
	unsigned char *p = grow(l, V1_REC_HDR + klen + vlen);
	memcpy(p + V1_REC_HDR, key, klen);
	if (vlen)
		memcpy(p + V1_REC_HDR + klen, val, vlen);
	uint32_t dcrc = dskvs__crc32c(0, p + V1_REC_HDR, klen + vlen);
	rec_hdr(p, dcrc, op, flags, (uint32_t)klen, (uint32_t)vlen, batch, seq);
}

void v1_write(const struct v1log *l, const char *path)
{
	dt_write_file(path, l->buf, l->len);
}

void v1_free(struct v1log *l)
{
	free(l->buf);
	memset(l, 0, sizeof(*l));
}

void v1_crafted_quadratic(const char *path, size_t total_bytes)
{
	struct v1log l;
	v1_init(&l);
	v1_rec(&l, V1_PUT, 0, 1, "a/k", "valid", 5, 1);
	DT_CHECK(total_bytes >= l.len + V1_REC_HDR, "%zu bytes is too small",
	         total_bytes);
	/* A record header whose own checksum is wrong. */
	unsigned char *bad = grow(&l, V1_REC_HDR);
	rec_hdr(bad, 0, V1_PUT, 0, 3, 5, 1, 2);
	bad[0] ^= 0xff;
	/* Back-to-back headers: valid header checksum, wrong data
	 * checksum, each claiming a value that reaches the end of the file. */
	uint64_t seq = 3;
	while (l.len + V1_REC_HDR + 1 <= total_bytes) {
		size_t left = total_bytes - l.len;
		size_t vlen = left - V1_REC_HDR - 1;
		if (vlen > 64u * 1024 * 1024)
			vlen = 64u * 1024 * 1024;
		rec_hdr(grow(&l, V1_REC_HDR), 0xdeadbeefu, V1_PUT, 0, 1,
		        (uint32_t)vlen, 1, seq++);
	}
	memset(grow(&l, total_bytes - l.len), 0, total_bytes - l.len);
	v1_write(&l, path);
	v1_free(&l);
}
