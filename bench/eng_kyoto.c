/*
 * Kyoto Cabinet through its C API (kclangc.h): CacheDB (on-memory hash
 * database, "*") and HashDB (file hash database, ".kch"). Tuned as its docs
 * advise: bnum about twice the record count, and for HashDB an mmap region
 * (msiz) larger than the file. Writes are not synced unless the workload
 * asks (KCOAUTOSYNC). Both are unordered, so scanning one collection walks
 * every record and keeps those with the collection's prefix: that is what a
 * user of these databases has to do.
 */
#include "engine.h"

#ifdef BENCH_HAVE_KYOTO
#include <kclangc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *kc_open_path(const struct bench_open_cfg *cfg, int hash, char *err,
                          size_t errlen)
{
	KCDB *db = kcdbnew();
	char path[4400];
	unsigned long long bnum = (unsigned long long)cfg->keys * 2;
	unsigned long long msiz =
	    (unsigned long long)cfg->keys * (cfg->value_size + 128) * 2 +
	    (64ull << 20);
	uint32_t mode = KCOWRITER | KCOCREATE;

	if (hash)
		snprintf(path, sizeof(path), "%s/kc.kch#bnum=%llu#msiz=%llu",
		         cfg->dir, bnum, msiz);
	else
		snprintf(path, sizeof(path), "*#bnum=%llu", bnum);
	if (cfg->sync_every)
		mode |= KCOAUTOSYNC;
	if (!kcdbopen(db, path, mode)) {
		bench_errf(err, errlen, "%s", kcecodename(kcdbecode(db)));
		kcdbdel(db);
		return NULL;
	}
	return db;
}

static void *kcc_open(const struct bench_open_cfg *cfg, char *err,
                      size_t errlen)
{
	return kc_open_path(cfg, 0, err, errlen);
}

static void *kch_open(const struct bench_open_cfg *cfg, char *err,
                      size_t errlen)
{
	return kc_open_path(cfg, 1, err, errlen);
}

static void kc_close(void *db)
{
	kcdbclose(db);
	kcdbdel(db);
}

static int kc_get(void *db, void *t, const struct bkey *k, void *buf,
                  size_t cap, size_t *len)
{
	int32_t n = kcdbgetbuf(db, k->full, k->full_len, buf, cap);

	(void)t;
	if (n < 0)
		return kcdbecode(db) == KCENOREC ? BENCH_NOTFOUND : -1;
	*len = (size_t)n;
	return 0;
}

static int kc_put(void *db, void *t, const struct bkey *k, const void *v,
                  size_t vl)
{
	(void)t;
	return kcdbset(db, k->full, k->full_len, v, vl) ? 0 : -1;
}

static int kc_del(void *db, void *t, const struct bkey *k)
{
	(void)t;
	if (kcdbremove(db, k->full, k->full_len))
		return 0;
	return kcdbecode(db) == KCENOREC ? BENCH_NOTFOUND : -1;
}

static int kc_scan(void *db, void *t, const char *c, size_t cl, uint64_t *n,
                   uint64_t *bytes)
{
	KCCUR *cur = kcdbcursor(db);
	uint64_t cnt = 0, by = 0;
	size_t ks, vs;
	const char *v;
	char *key;

	(void)t;
	kccurjump(cur);
	while ((key = kccurget(cur, &ks, &v, &vs, 1)) != NULL) {
		if (ks > cl && key[cl] == '/' && memcmp(key, c, cl) == 0) {
			cnt++;
			by += vs + (vs ? (unsigned char)v[0] : 0);
		}
		kcfree(key);
	}
	kccurdel(cur);
	*n = cnt;
	*bytes = by;
	return 0;
}

static int kc_sync(void *db)
{
	return kcdbsync(db, 1, NULL, NULL) ? 0 : -1;
}

const struct bench_engine bench_engine_kc_cache = {
	.name = "kc-cache",
	.what = "Kyoto Cabinet CacheDB (on-memory hash, bnum = 2N)",
	.open = kcc_open,
	.close = kc_close,
	.get = kc_get,
	.put = kc_put,
	.del = kc_del,
	.scan = kc_scan,
};

const struct bench_engine bench_engine_kc_hash = {
	.name = "kc-hash",
	.what = "Kyoto Cabinet HashDB (file hash, bnum = 2N, msiz > file)",
	.persistent = 1,
	.open = kch_open,
	.close = kc_close,
	.get = kc_get,
	.put = kc_put,
	.del = kc_del,
	.scan = kc_scan,
	.sync = kc_sync,
};
#else
const struct bench_engine bench_engine_kc_cache = {
	.name = "kc-cache",
	.what = "Kyoto Cabinet CacheDB",
	.skip = "kyotocabinet not found at build time (bench/setup-peers.sh "
	        "installs libkyotocabinet-dev)",
};
const struct bench_engine bench_engine_kc_hash = {
	.name = "kc-hash",
	.what = "Kyoto Cabinet HashDB",
	.skip = "kyotocabinet not found at build time (bench/setup-peers.sh "
	        "installs libkyotocabinet-dev)",
};
#endif
