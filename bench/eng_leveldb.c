/*
 * LevelDB through its C API (leveldb/c.h), set up as its docs advise for a
 * data set that fits in RAM: a block cache larger than the data, a 10-bit
 * bloom filter, a 64 MiB write buffer, snappy left on (the default).
 * Writes are not synced unless the workload asks for it (WriteOptions.sync).
 */
#include "engine.h"

#ifdef BENCH_HAVE_LEVELDB
#include <leveldb/c.h>
#include <stdlib.h>
#include <string.h>

struct lvdb {
	leveldb_t *db;
	leveldb_options_t *o;
	leveldb_cache_t *cache;
	leveldb_filterpolicy_t *bloom;
	leveldb_readoptions_t *ro;
	leveldb_writeoptions_t *wo, *wsync;
};

static void *lv_open(const struct bench_open_cfg *cfg, char *err, size_t errlen)
{
	struct lvdb *d = calloc(1, sizeof(*d));
	char *e = NULL;
	size_t cache = (size_t)cfg->keys * (cfg->value_size + 64) * 2;

	if (cache < (64u << 20))
		cache = 64u << 20;
	d->o = leveldb_options_create();
	d->cache = leveldb_cache_create_lru(cache);
	d->bloom = leveldb_filterpolicy_create_bloom(10);
	leveldb_options_set_create_if_missing(d->o, 1);
	leveldb_options_set_cache(d->o, d->cache);
	leveldb_options_set_filter_policy(d->o, d->bloom);
	leveldb_options_set_write_buffer_size(d->o, 64u << 20);
	leveldb_options_set_max_open_files(d->o, 1000);
	d->db = leveldb_open(d->o, cfg->dir, &e);
	if (e) {
		bench_errf(err, errlen, "%s", e);
		leveldb_free(e);
		leveldb_options_destroy(d->o);
		leveldb_cache_destroy(d->cache);
		leveldb_filterpolicy_destroy(d->bloom);
		free(d);
		return NULL;
	}
	d->ro = leveldb_readoptions_create();
	d->wo = leveldb_writeoptions_create();
	d->wsync = leveldb_writeoptions_create();
	leveldb_writeoptions_set_sync(d->wsync, 1);
	if (cfg->sync_every)
		leveldb_writeoptions_set_sync(d->wo, 1);
	return d;
}

static void lv_close(void *p)
{
	struct lvdb *d = p;

	leveldb_close(d->db);
	leveldb_readoptions_destroy(d->ro);
	leveldb_writeoptions_destroy(d->wo);
	leveldb_writeoptions_destroy(d->wsync);
	leveldb_options_destroy(d->o);
	leveldb_cache_destroy(d->cache);
	leveldb_filterpolicy_destroy(d->bloom);
	free(d);
}

static int lv_get(void *p, void *t, const struct bkey *k, void *buf, size_t cap,
                  size_t *len)
{
	struct lvdb *d = p;
	char *e = NULL;
	size_t vl;
	char *v = leveldb_get(d->db, d->ro, k->full, k->full_len, &vl, &e);

	(void)t;
	if (e) {
		leveldb_free(e);
		return -1;
	}
	if (v == NULL)
		return BENCH_NOTFOUND;
	*len = vl;
	memcpy(buf, v, vl < cap ? vl : cap);
	leveldb_free(v);
	return 0;
}

static int lv_put(void *p, void *t, const struct bkey *k, const void *v,
                  size_t vl)
{
	struct lvdb *d = p;
	char *e = NULL;

	(void)t;
	leveldb_put(d->db, d->wo, k->full, k->full_len, v, vl, &e);
	if (e) {
		leveldb_free(e);
		return -1;
	}
	return 0;
}

/* A blind delete (a tombstone write), as LevelDB users delete. */
static int lv_del(void *p, void *t, const struct bkey *k)
{
	struct lvdb *d = p;
	char *e = NULL;

	(void)t;
	leveldb_delete(d->db, d->wo, k->full, k->full_len, &e);
	if (e) {
		leveldb_free(e);
		return -1;
	}
	return 0;
}

static int lv_scan(void *p, void *t, const char *c, size_t cl, uint64_t *n,
                   uint64_t *bytes)
{
	struct lvdb *d = p;
	leveldb_iterator_t *it = leveldb_create_iterator(d->db, d->ro);
	char pfx[256];
	uint64_t cnt = 0, by = 0;

	(void)t;
	memcpy(pfx, c, cl);
	pfx[cl] = '/';
	for (leveldb_iter_seek(it, pfx, cl + 1); leveldb_iter_valid(it);
	     leveldb_iter_next(it)) {
		size_t kl, vl;
		const char *key = leveldb_iter_key(it, &kl);
		const char *v;
		if (kl < cl + 1 || memcmp(key, pfx, cl + 1))
			break;
		v = leveldb_iter_value(it, &vl);
		cnt++;
		by += vl + (vl ? (unsigned char)v[0] : 0);
	}
	leveldb_iter_destroy(it);
	*n = cnt;
	*bytes = by;
	return 0;
}

static int lv_sync(void *p)
{
	struct lvdb *d = p;
	leveldb_writebatch_t *b = leveldb_writebatch_create();
	char *e = NULL;

	/* a synced (empty) batch: LevelDB syncs its log up to here */
	leveldb_write(d->db, d->wsync, b, &e);
	leveldb_writebatch_destroy(b);
	if (e) {
		leveldb_free(e);
		return -1;
	}
	return 0;
}

const struct bench_engine bench_engine_leveldb = {
	.name = "leveldb",
	.what = "LevelDB (C API; LRU cache > data, bloom 10 bits, 64 MiB "
	        "write buffer)",
	.persistent = 1,
	.open = lv_open,
	.close = lv_close,
	.get = lv_get,
	.put = lv_put,
	.del = lv_del,
	.scan = lv_scan,
	.sync = lv_sync,
};
#else
const struct bench_engine bench_engine_leveldb = {
	.name = "leveldb",
	.what = "LevelDB",
	.skip = "leveldb not found at build time (bench/setup-peers.sh "
	        "installs libleveldb-dev)",
};
#endif
