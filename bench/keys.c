/*
 * dskvs-bench: the keys — the key strings and absent keys, the value pool,
 * the fill orders, the zipfian generators (as YCSB has them) and the
 * per-thread pre-drawn key streams.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "workload.h"

struct bkey *keys;
struct bkey *missing;
size_t nmissing;
char *val_pool;
struct zipf zscr;
struct zipf zlatest;

static unsigned int coll_of(uint64_t i)
{
	if (i < cfg.keys)
		return (unsigned int)(i * cfg.colls / cfg.keys);
	return (unsigned int)(i % cfg.colls);
}

/* Writes key i ("c007/000000000000123") into buf; returns its length.
 * Index order is the sorted order of the full keys, which is what fillseq
 * means for the ordered stores. */
size_t key_format(uint64_t i, char *buf, size_t cap, int absent)
{
	int n = snprintf(buf, cap, "c%03u/%0*" PRIu64, coll_of(i),
	                 (int)cfg.key_size, i);
	if (absent)
		buf[5] = 'x'; /* same length and collection, never present */
	return (size_t)n;
}

void build_keys(void)
{
	size_t stride = 5 + cfg.key_size + 1;
	char *mem;

	stride = (stride + 7) & ~(size_t)7;
	keys = xmalloc(cfg.keys * sizeof(*keys));
	mem = xmalloc(cfg.keys * stride);
	for (uint64_t i = 0; i < cfg.keys; i++) {
		char *p = mem + i * stride;
		keys[i].full = p;
		keys[i].full_len = key_format(i, p, stride, 0);
		keys[i].coll_len = 4;
	}
	nmissing = cfg.keys < IDX_PER_THR ? cfg.keys : IDX_PER_THR;
	missing = xmalloc(nmissing * sizeof(*missing));
	mem = xmalloc(nmissing * stride);
	uint64_t s = 42;
	for (size_t i = 0; i < nmissing; i++) {
		char *p = mem + i * stride;
		uint64_t k = rng_next(&s) % cfg.keys;
		missing[i].full = p;
		missing[i].full_len = key_format(k, p, stride, 1);
		missing[i].coll_len = 4;
	}
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
