/*
 * Self-validating values.
 *
 * Layout (host byte order: a value is only ever read back on the machine
 * that wrote it):
 *   0  u32 magic     "DSV1"
 *   4  u32 len       length of the whole value
 *   8  u32 key       key id the value was written to
 *  12  u32 writer    thread that wrote it
 *  16  u64 version   per-key version (shared keys: a global counter)
 *  24  u64 hsum      mix of bytes 0..23
 *  32  payload       a splitmix64 stream seeded by hsum
 *
 * Every byte follows from (key, writer, version), and the length from (key,
 * version), so a value mixed from two writes (torn), cut short, or belonging
 * to another key is caught here, and the first wrong byte is reported. Two
 * versions of one key differ in their header and, through hsum, in every
 * payload word, so a torn value cannot pass by accident.
 */
#include <inttypes.h>
#include <string.h>

#include "stress.h"

#define SV_MAGIC 0x31565344u /* "DSV1" read as a little-endian u32 */

struct sv_hdr {
	uint32_t magic, len, key, writer;
	uint64_t version, hsum;
};
_Static_assert(sizeof(struct sv_hdr) == SV_HDR, "header is 32 bytes");

static uint64_t hdr_sum(const struct sv_hdr *h)
{
	uint64_t z = mix64(((uint64_t)h->magic << 32) ^ h->len);
	z = mix64(z ^ (((uint64_t)h->key << 32) | h->writer));
	return mix64(z ^ h->version);
}

size_t sv_len(const struct stress_opts *o, uint32_t key, uint64_t version)
{
	uint64_t span = o->value_max - o->value_min + 1;
	return o->value_min +
	       (size_t)(mix64(((uint64_t)key << 40) ^ version) % span);
}

void sv_fill(void *buf, size_t len, uint32_t key, uint32_t writer,
             uint64_t version)
{
	struct sv_hdr h = { SV_MAGIC, (uint32_t)len, key, writer, version, 0 };
	h.hsum = hdr_sum(&h);
	memcpy(buf, &h, sizeof h);
	uint64_t s = h.hsum;
	unsigned char *p = (unsigned char *)buf + SV_HDR;
	size_t left = len - SV_HDR;
	while (left >= 8) {
		uint64_t w = rng_next(&s);
		memcpy(p, &w, 8);
		p += 8;
		left -= 8;
	}
	if (left) {
		uint64_t w = rng_next(&s);
		memcpy(p, &w, left);
	}
}

bool sv_check(const struct stress_opts *o, const void *buf, size_t len,
              struct sv_info *out, char *why, size_t whycap)
{
	struct sv_hdr h;
	memset(out, 0, sizeof *out);
	out->len = len;
	if (len < SV_HDR) {
		snprintf(why, whycap,
		         "%zu bytes, shorter than the %u-byte header", len,
		         SV_HDR);
		return false;
	}
	memcpy(&h, buf, sizeof h);
	out->key = h.key;
	out->writer = h.writer;
	out->version = h.version;
	if (h.magic != SV_MAGIC) {
		snprintf(why, whycap, "bad magic 0x%08" PRIx32 " (len %zu)",
		         h.magic, len);
		return false;
	}
	if (h.hsum != hdr_sum(&h)) {
		snprintf(why, whycap,
		         "header checksum mismatch (claims key %" PRIu32
		         " writer %" PRIu32 " version %" PRIu64 ", len %zu)",
		         h.key, h.writer, h.version, len);
		return false;
	}
	if (h.len != len) {
		snprintf(why, whycap,
		         "length %zu but the header of key %" PRIu32
		         " version %" PRIu64 " says %" PRIu32,
		         len, h.key, h.version, h.len);
		return false;
	}
	size_t want = sv_len(o, h.key, h.version);
	if (want != len) {
		snprintf(why, whycap,
		         "length %zu but version %" PRIu64 " of key %" PRIu32
		         " is %zu bytes long",
		         len, h.version, h.key, want);
		return false;
	}
	uint64_t s = h.hsum;
	const unsigned char *p = (const unsigned char *)buf + SV_HDR;
	size_t off = SV_HDR;
	while (off < len) {
		uint64_t w = rng_next(&s);
		size_t n = len - off < 8 ? len - off : 8;
		if (memcmp(p, &w, n) != 0) {
			const unsigned char *e = (const unsigned char *)&w;
			size_t i = 0;
			while (p[i] == e[i])
				i++;
			snprintf(why, whycap,
			         "payload differs at byte %zu of %zu (header: "
			         "key %" PRIu32 " writer %" PRIu32
			         " version %" PRIu64 ")",
			         off + i, len, h.key, h.writer, h.version);
			return false;
		}
		p += n;
		off += n;
	}
	return true;
}
