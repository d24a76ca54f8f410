/* Key names, operation picking and other pieces both modes use. */
#include <stdlib.h>
#include <string.h>

#include "stress.h"

const char *const op_name[OP_NKINDS] = {
	[OP_GET] = "get",
	[OP_PUT] = "put",
	[OP_DELETE] = "delete",
	[OP_GET_ALL] = "get_all",
	[OP_DELETE_ALL] = "delete_all",
	[OP_SYNC] = "sync",
};

int keyspace_init(struct keyspace *ks, const struct stress_opts *o)
{
	memset(ks, 0, sizeof *ks);
	ks->writers = o->writers;
	ks->keys = o->keys;
	ks->colls = o->colls;
	ks->shared = o->shared_keys;
	ks->owned = (uint32_t)o->writers * o->keys;
	ks->per_coll_max = (o->keys + o->colls - 1) / o->colls;
	ks->key = calloc((size_t)ks->owned + ks->shared, KEY_NAME_MAX);
	ks->coll = calloc((size_t)o->writers * o->colls, KEY_NAME_MAX);
	if (!ks->key || !ks->coll) {
		keyspace_free(ks);
		return -1;
	}
	for (unsigned int w = 0; w < o->writers; w++) {
		for (unsigned int c = 0; c < o->colls; c++)
			snprintf(ks->coll[w * o->colls + c], KEY_NAME_MAX,
			         "w%02uc%u", w, c);
		for (unsigned int i = 0; i < o->keys; i++)
			snprintf(ks->key[w * o->keys + i], KEY_NAME_MAX,
			         "w%02uc%u/k%06u", w, i % o->colls, i);
	}
	for (unsigned int j = 0; j < ks->shared; j++)
		snprintf(ks->key[ks->owned + j], KEY_NAME_MAX, "shared/s%04u",
		         j);
	return 0;
}

void keyspace_free(struct keyspace *ks)
{
	free(ks->key);
	free(ks->coll);
	ks->key = NULL;
	ks->coll = NULL;
}

/* Parse "<prefix><digits>" and accept it only if printing the number back
 * with `fmt` gives the same bytes, so "k0012" or "k12x" are unknown. */
static long parse_member(const char *m, size_t len, char prefix,
                         const char *fmt, unsigned long limit)
{
	char tmp[KEY_NAME_MAX];
	if (len < 2 || len >= sizeof tmp || m[0] != prefix)
		return -1;
	unsigned long v = 0;
	for (size_t i = 1; i < len; i++) {
		if (m[i] < '0' || m[i] > '9' || v > limit)
			return -1;
		v = v * 10 + (unsigned long)(m[i] - '0');
	}
	if (v >= limit)
		return -1;
	int n = snprintf(tmp, sizeof tmp, fmt, (unsigned int)v);
	if (n < 0 || (size_t)n != len || memcmp(tmp, m, len) != 0)
		return -1;
	return (long)v;
}

long parse_owned_member(const struct keyspace *ks, unsigned int c,
                        const char *m, size_t len)
{
	long i = parse_member(m, len, 'k', "k%06u", ks->keys);
	if (i < 0 || (unsigned long)i % ks->colls != c)
		return -1;
	return i;
}

long parse_shared_member(const struct keyspace *ks, const char *m, size_t len)
{
	return parse_member(m, len, 's', "s%04u", ks->shared);
}

int pick_op(const struct stress_opts *o, unsigned int mask, uint64_t *rng)
{
	double total = 0;
	for (int k = 0; k < OP_NKINDS; k++)
		if (mask & (1u << k))
			total += o->mix[k];
	if (total <= 0)
		return -1;
	double r = rng_unit(rng) * total;
	int last = -1;
	for (int k = 0; k < OP_NKINDS; k++) {
		if (!(mask & (1u << k)) || o->mix[k] <= 0)
			continue;
		last = k;
		if (r < o->mix[k])
			return k;
		r -= o->mix[k];
	}
	return last; /* rounding at the top end */
}

const char *rc_name(int rc)
{
	return rc == DSKVS_OK ? "DSKVS_OK" : dskvs_err_name(rc);
}

void store_options(const struct stress_opts *o, int sync_mode,
                   dskvs_options *out)
{
	dskvs_options_init(out);
	out->sync_mode = sync_mode;
	if (o->queue)
		out->queue_capacity = o->queue;
	/* A small threshold makes the janitor compact on its own during the
	 * run too, racing with readers and writers like dskvs_compact(). */
	out->auto_compact = 1;
	out->compact_min_bytes = o->compact_min;
	/* Each open replays on 1, 2, 3, then 4 threads, so every reopen and
	 * crash check also compares the parallel replay with the model. */
	static unsigned opens;
	out->recovery_threads =
	    1 + __atomic_fetch_add(&opens, 1, __ATOMIC_RELAXED) % 4;
}
