/*
 * dskvs-bench: the keys — the key strings and absent keys, the value pool,
 * the fill orders, the zipfian generators (as YCSB has them) and the
 * per-thread pre-drawn key streams.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workload.h"

char *val_pool;
struct zipf zscr;
struct zipf zlatest;
const char key_digits2[200] = "0001020304050607080910111213141516171819"
                              "2021222324252627282930313233343536373839"
                              "4041424344454647484950515253545556575859"
                              "6061626364656667686970717273747576777879"
                              "8081828384858687888990919293949596979899";
double key_coll_scale;
uint64_t key_fast_below;

static unsigned int coll_of(uint64_t i)
{
	if (i < cfg.keys)
		return (unsigned int)(i * cfg.colls / cfg.keys);
	return (unsigned int)(i % cfg.colls);
}

/* Writes key i ("c007/000000000000123") into buf; returns its length.
 * Index order is the sorted order of the full keys, which is what fillseq
 * means for the ordered stores. The reference for key_at(). */
size_t key_format(uint64_t i, char *buf, size_t cap, int absent)
{
	int n = snprintf(buf, cap, "c%03u/%0*" PRIu64, coll_of(i),
	                 (int)cfg.key_size, i);
	if (absent)
		buf[5] = 'x'; /* same length and collection, never present */
	return (size_t)n;
}

/* key_at() against key_format(): the ends of every collection, the ends of
 * the key space, past it (YCSB D) and a spread sample in between. */
static void check_key_at(void)
{
	struct keybuf kb;
	char ref[KEYBUF_CAP];
	uint64_t s = 1;

	for (uint64_t j = 0; j < 4096 + 4 * cfg.colls + 8; j++) {
		uint64_t i;
		if (j < 4096)
			i = rng_next(&s) % cfg.keys;
		else if (j < 4096 + 4 * cfg.colls) {
			uint64_t c = (j - 4096) / 4, d = (j - 4096) % 4;
			uint64_t b = (c * cfg.keys + cfg.colls - 1) / cfg.colls;
			i = b + d -
			    2; /* b-2 .. b+1 around a collection start */
			if (b < 2 || i >= cfg.keys)
				continue;
		} else
			i = cfg.keys - 4 + (j - 4096 - 4 * cfg.colls);
		for (int absent = 0; absent < 2; absent++) {
			const struct bkey *k = key_at(&kb, i, absent);
			size_t n = key_format(i, ref, sizeof(ref), absent);
			if (k->full_len != n ||
			    memcmp(k->full, ref, n + 1) != 0)
				die("key_at(%" PRIu64 ") gave '%s', not '%s'",
				    i, k->full, ref);
		}
	}
}

void build_keys(void)
{
	uint64_t s = 42;

	key_coll_scale = (double)cfg.colls / (double)cfg.keys;
	key_fast_below = UINT64_MAX;
	if (cfg.key_size < 19) {
		key_fast_below = 1;
		for (unsigned int d = 0; d < cfg.key_size; d++)
			key_fast_below *= 10;
	}
	check_key_at();
	/* the values as before, when the absent keys were drawn from s first */
	for (uint64_t i = 0;
	     i < (cfg.keys < IDX_PER_THR ? cfg.keys : IDX_PER_THR); i++)
		rng_next(&s);
	val_pool = xmalloc(VAL_POOL + 65536 + 16384);
	for (size_t i = 0; i < VAL_POOL + 65536 + 16384; i++)
		val_pool[i] = (char)rng_next(&s);
}

uint64_t *seq_order(uint64_t n)
{
	uint64_t *o = xmalloc(n * sizeof(*o));

	for (uint64_t i = 0; i < n; i++)
		o[i] = i;
	return o;
}

uint64_t *rand_order(uint64_t n, uint64_t seed)
{
	uint64_t *o = seq_order(n);

	for (uint64_t i = n - 1; i > 0; i--) {
		uint64_t j = rng_next(&seed) % (i + 1);
		uint64_t t = o[i];
		o[i] = o[j];
		o[j] = t;
	}
	return o;
}

/* ---- zipfian (Gray et al., "Quickly generating billion-record synthetic
 * databases", SIGMOD 1994), as YCSB uses it ------------------------------- */

static double zeta(uint64_t n, double theta)
{
	double sum = 0;

	for (uint64_t i = 1; i <= n; i++)
		sum += 1.0 / pow((double)i, theta);
	return sum;
}

void zipf_init(struct zipf *z, uint64_t n, double theta, double zetan)
{
	double zeta2 = zeta(2, theta);

	z->n = (double)n;
	z->theta = theta;
	z->alpha = 1.0 / (1.0 - theta);
	z->zetan = zetan > 0 ? zetan : zeta(n, theta);
	z->eta = (1 - pow(2.0 / (double)n, 1 - theta)) / (1 - zeta2 / z->zetan);
	z->half_pow_theta = 1 + pow(0.5, theta);
}

uint64_t zipf_next(const struct zipf *z, uint64_t *s)
{
	double u = rng_unit(s);
	double uz = u * z->zetan;

	if (uz < 1.0)
		return 0;
	if (uz < z->half_pow_theta)
		return 1;
	return (uint64_t)(z->n * pow(z->eta * u - z->eta + 1, z->alpha));
}

/* YCSB's fnvhash64: FNV-1a over the 8 bytes of the value, low byte first,
 * then Math.abs of the signed result. */
uint64_t ycsb_fnv64(uint64_t v)
{
	uint64_t h = 0xCBF29CE484222325ull;

	for (int i = 0; i < 8; i++) {
		h ^= v & 0xff;
		v >>= 8;
		h *= 1099511628211ull;
	}
	int64_t sh = (int64_t)h;
	return sh < 0 ? (uint64_t)(-(sh + 1)) + 1 : (uint64_t)sh;
}

/* ScrambledZipfian: a zipfian over 10^10 items (YCSB's precomputed zeta),
 * hashed and taken mod n so the hot keys are spread over the key space. */
void streams_free(struct streams *st)
{
	for (int t = 0; t <= MAXTHREADS; t++) {
		free(st->idx[t]);
		free(st->ops[t]);
		st->idx[t] = NULL;
		st->ops[t] = NULL;
	}
}

void streams_draw(struct streams *st, const struct bench_workload *w,
                  int threads)
{
	streams_free(st);
	st->threads = threads;
	for (int t = 0; t <= threads && t <= MAXTHREADS; t++) {
		uint64_t s = 0x5eed0000ull + (uint64_t)t * 7919 +
		             (uint64_t)workload_index(w) * 104729;
		uint32_t *idx = xmalloc(IDX_PER_THR * sizeof(*idx));
		uint8_t *ops = NULL;

		if (w->draw)
			w->draw(w, &s, idx, &ops);
		else
			for (uint32_t j = 0; j < IDX_PER_THR; j++)
				idx[j] = (uint32_t)(rng_next(&s) % cfg.keys);
		st->idx[t] = idx;
		st->ops[t] = ops;
	}
}
