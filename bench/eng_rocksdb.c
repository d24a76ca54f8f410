/*
 * RocksDB through its C API (rocksdb/c.h), tuned as its wiki advises for a
 * data set that fits in RAM: OptimizeForPointLookup (block cache, bloom
 * filter, hash-searchable data blocks) with a cache larger than the data,
 * IncreaseParallelism for background work, level-style compaction defaults.
 * Reads use pinned slices (no copy beyond ours); writes are not synced
 * unless the workload asks (WriteOptions.sync).
 */
#include "engine.h"

#ifdef BENCH_HAVE_ROCKSDB
#include <rocksdb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rxdb {
	rocksdb_t *db;
	rocksdb_options_t *o;
	rocksdb_readoptions_t *ro;
	rocksdb_writeoptions_t *wo;
};

static void *rx_open(const struct bench_open_cfg *cfg, char *err, size_t errlen)
{
	struct rxdb *d = calloc(1, sizeof(*d));
	char *e = NULL;
	uint64_t cache_mb =
	    (uint64_t)cfg->keys * (cfg->value_size + 64) * 2 >> 20;

	if (cache_mb < 64)
		cache_mb = 64;
	d->o = rocksdb_options_create();
	rocksdb_options_set_create_if_missing(d->o, 1);
	rocksdb_options_increase_parallelism(d->o, 2);
	rocksdb_options_optimize_level_style_compaction(d->o, 512ull << 20);
	rocksdb_options_optimize_for_point_lookup(d->o, cache_mb);
	d->db = rocksdb_open(d->o, cfg->dir, &e);
	if (e) {
		bench_errf(err, errlen, "%s", e);
		rocksdb_free(e);
		rocksdb_options_destroy(d->o);
		free(d);
		return NULL;
	}
	d->ro = rocksdb_readoptions_create();
	d->wo = rocksdb_writeoptions_create();
	if (cfg->sync_every)
		rocksdb_writeoptions_set_sync(d->wo, 1);
	return d;
}

static void rx_close(void *p)
{
	struct rxdb *d = p;

	rocksdb_close(d->db);
	rocksdb_readoptions_destroy(d->ro);
	rocksdb_writeoptions_destroy(d->wo);
	rocksdb_options_destroy(d->o);
	free(d);
}

static int rx_get(void *p, void *t, const struct bkey *k, void *buf, size_t cap,
                  size_t *len)
{
	struct rxdb *d = p;
	char *e = NULL;
	size_t vl;
	rocksdb_pinnableslice_t *ps =
	    rocksdb_get_pinned(d->db, d->ro, k->full, k->full_len, &e);
	const char *v;

	(void)t;
	if (e) {
		rocksdb_free(e);
		return -1;
	}
	if (ps == NULL)
		return BENCH_NOTFOUND;
	v = rocksdb_pinnableslice_value(ps, &vl);
	if (v == NULL) {
		rocksdb_pinnableslice_destroy(ps);
		return BENCH_NOTFOUND;
	}
	*len = vl;
	memcpy(buf, v, vl < cap ? vl : cap);
	rocksdb_pinnableslice_destroy(ps);
	return 0;
}

static int rx_put(void *p, void *t, const struct bkey *k, const void *v,
                  size_t vl)
{
	struct rxdb *d = p;
	char *e = NULL;

	(void)t;
	rocksdb_put(d->db, d->wo, k->full, k->full_len, v, vl, &e);
	if (e) {
		static int said;
		if (!said++)
			fprintf(stderr, "rocksdb_put: %s\n", e);
		rocksdb_free(e);
		return -1;
	}
	return 0;
}

static int rx_del(void *p, void *t, const struct bkey *k)
{
	struct rxdb *d = p;
	char *e = NULL;

	(void)t;
	rocksdb_delete(d->db, d->wo, k->full, k->full_len, &e);
	if (e) {
		rocksdb_free(e);
		return -1;
	}
	return 0;
}

static int rx_scan(void *p, void *t, const char *c, size_t cl, uint64_t *n,
                   uint64_t *bytes)
{
	struct rxdb *d = p;
	rocksdb_iterator_t *it = rocksdb_create_iterator(d->db, d->ro);
	char pfx[256];
	uint64_t cnt = 0, by = 0;

	(void)t;
	memcpy(pfx, c, cl);
	pfx[cl] = '/';
	for (rocksdb_iter_seek(it, pfx, cl + 1); rocksdb_iter_valid(it);
	     rocksdb_iter_next(it)) {
		size_t kl, vl;
		const char *key = rocksdb_iter_key(it, &kl);
		const char *v;
		if (kl < cl + 1 || memcmp(key, pfx, cl + 1))
			break;
		v = rocksdb_iter_value(it, &vl);
		cnt++;
		by += vl + (vl ? (unsigned char)v[0] : 0);
	}
	rocksdb_iter_destroy(it);
	*n = cnt;
	*bytes = by;
	return 0;
}

static int rx_sync(void *p)
{
	struct rxdb *d = p;
	char *e = NULL;

	rocksdb_flush_wal(d->db, 1, &e);
	if (e) {
		rocksdb_free(e);
		return -1;
	}
	return 0;
}

const struct bench_engine bench_engine_rocksdb = {
	.name = "rocksdb",
	.what = "RocksDB (C API; OptimizeForPointLookup, cache > data, "
	        "IncreaseParallelism)",
	.persistent = 1,
	.open = rx_open,
	.close = rx_close,
	.get = rx_get,
	.put = rx_put,
	.del = rx_del,
	.scan = rx_scan,
	.sync = rx_sync,
};
#else
const struct bench_engine bench_engine_rocksdb = {
	.name = "rocksdb",
	.what = "RocksDB",
	.skip = "rocksdb not found at build time (bench/setup-peers.sh "
	        "installs librocksdb-dev)",
};
#endif
