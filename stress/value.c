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

/* ---- counter values (the atomic mix) --------------------------------------
 *
 * Layout: u32 magic "CTR1", u32 counter id, u64 count, u64 check (a mix of
 * the three). A counter is only ever changed by +1, so the count is the
 * number of increments applied; the check catches a torn or misdirected
 * value.
 */
#define CTR_MAGIC 0x31525443u /* "CTR1" */

static uint64_t ctr_sum(uint32_t id, uint64_t count)
{
	return mix64(mix64(((uint64_t)CTR_MAGIC << 32) | id) ^ count);
}

void ctr_fill(void *buf, uint32_t id, uint64_t count)
{
	uint32_t h[2] = { CTR_MAGIC, id };
	uint64_t sum = ctr_sum(id, count);
	memcpy(buf, h, 8);
	memcpy((char *)buf + 8, &count, 8);
	memcpy((char *)buf + 16, &sum, 8);
}

bool ctr_check(const void *buf, size_t len, uint32_t id, uint64_t *count,
               char *why, size_t whycap)
{
	uint32_t h[2];
	uint64_t c, sum;
	*count = 0;
	if (len != CTR_LEN) {
		snprintf(why, whycap, "%zu bytes, a counter has %u", len,
		         CTR_LEN);
		return false;
	}
	memcpy(h, buf, 8);
	memcpy(&c, (const char *)buf + 8, 8);
	memcpy(&sum, (const char *)buf + 16, 8);
	if (h[0] != CTR_MAGIC || sum != ctr_sum(h[1], c)) {
		snprintf(why, whycap,
		         "not a whole counter (magic 0x%08" PRIx32
		         ", claims id %" PRIu32 " count %" PRIu64 ")",
		         h[0], h[1], c);
		return false;
	}
	if (h[1] != id) {
		snprintf(why, whycap,
		         "a counter of id %" PRIu32 " (count %" PRIu64
		         "), expected id %" PRIu32,
		         h[1], c, id);
		return false;
	}
	*count = c;
	return true;
}

void ctr_key(char *buf, size_t cap, unsigned int i)
{
	if (i < NCTR_UPD)
		snprintf(buf, cap, ATOMIC_COLL "/u%u", i);
	else
		snprintf(buf, cap, ATOMIC_COLL "/c%u", i - NCTR_UPD);
}

int ctr_incr_fn(const void *old, size_t old_len, int exists,
                const void **new_val, size_t *new_len, void *arg)
{
	struct ctr_incr *a = arg;
	a->called = true;
	a->exists = exists != 0;
	a->old = 0;
	if (exists &&
	    !ctr_check(old, old_len, a->id, &a->old, a->why, sizeof a->why)) {
		a->bad = true;
		return CTR_ABORT_RC;
	}
	if (a->mode == CTR_KEEP)
		return DSKVS_UPDATE_KEEP;
	if (a->mode == CTR_ABORT)
		return CTR_ABORT_RC;
	ctr_fill(a->nv, a->id, a->old + 1);
	*new_val = a->nv;
	*new_len = CTR_LEN;
	return DSKVS_UPDATE_SET;
}
