/*
 * tkrzw through its C API (tkrzw_langc.h): TinyDBM (on-memory hash) and
 * HashDBM (file hash on a memory-mapped file), num_buckets about twice the
 * record count as its docs advise. Reads copy the value straight from the
 * record processor (no malloc'd copy). Writes are not synced unless the
 * workload asks; then every put is followed by a hard synchronize, which
 * is how tkrzw makes one write durable. Both are unordered: a collection
 * scan walks every record and keeps those with the collection's prefix.
 */
#include "engine.h"

#ifdef BENCH_HAVE_TKRZW
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tkrzw_langc.h>

struct tkdb {
	TkrzwDBM *dbm;
	int sync_every;
};

static void *tk_open_p(const struct bench_open_cfg *cfg, int file, char *err,
                       size_t errlen)
{
	struct tkdb *d = calloc(1, sizeof(*d));
	char path[4200], params[256];

	snprintf(params, sizeof(params), "dbm=%s,num_buckets=%llu%s",
	         file ? "HashDBM" : "TinyDBM",
	         (unsigned long long)cfg->keys * 2,
	         file ? ",file=MemoryMapParallelFile" : "");
	snprintf(path, sizeof(path), "%s/db.tkh", cfg->dir);
	d->dbm = tkrzw_dbm_open(file ? path : "", true, params);
	if (d->dbm == NULL) {
		TkrzwStatus st = tkrzw_get_last_status();
		bench_errf(err, errlen, "%s", st.message ? st.message : "?");
		free(d);
		return NULL;
	}
	d->sync_every = cfg->sync_every;
	return d;
}

static void *tkt_open(const struct bench_open_cfg *cfg, char *err,
                      size_t errlen)
{
	return tk_open_p(cfg, 0, err, errlen);
}

static void *tkh_open(const struct bench_open_cfg *cfg, char *err,
                      size_t errlen)
{
	return tk_open_p(cfg, 1, err, errlen);
}

static void tk_close(void *p)
{
	struct tkdb *d = p;

	tkrzw_dbm_close(d->dbm);
	free(d);
}

struct tkget {
	void *buf;
	size_t cap, len;
	int found;
};

static const char *tk_get_proc(void *arg, const char *k, int32_t ks,
                               const char *v, int32_t vs, int32_t *rs)
{
	struct tkget *g = arg;

	(void)k;
	(void)ks;
	(void)rs;
	if (v != NULL) {
		g->found = 1;
		g->len = (size_t)vs;
		memcpy(g->buf, v, (size_t)vs < g->cap ? (size_t)vs : g->cap);
	}
	return TKRZW_REC_PROC_NOOP;
}

static int tk_get(void *p, void *t, const struct bkey *k, void *buf, size_t cap,
                  size_t *len)
{
	struct tkdb *d = p;
	struct tkget g = { buf, cap, 0, 0 };

	(void)t;
	if (!tkrzw_dbm_process(d->dbm, k->full, (int32_t)k->full_len,
	                       tk_get_proc, &g, false))
		return -1;
	if (!g.found)
		return BENCH_NOTFOUND;
	*len = g.len;
	return 0;
}

static int tk_put(void *p, void *t, const struct bkey *k, const void *v,
                  size_t vl)
{
	struct tkdb *d = p;

	(void)t;
	if (!tkrzw_dbm_set(d->dbm, k->full, (int32_t)k->full_len, v,
	                   (int32_t)vl, true))
		return -1;
	if (d->sync_every &&
	    !tkrzw_dbm_synchronize(d->dbm, true, NULL, NULL, ""))
		return -1;
	return 0;
}

static int tk_del(void *p, void *t, const struct bkey *k)
{
	struct tkdb *d = p;

	(void)t;
	if (tkrzw_dbm_remove(d->dbm, k->full, (int32_t)k->full_len))
		return 0;
	return tkrzw_get_last_status_code() == TKRZW_STATUS_NOT_FOUND_ERROR
	           ? BENCH_NOTFOUND
	           : -1;
}

struct tkscan {
	const char *c;
	size_t cl;
	uint64_t n, bytes;
};

static const char *tk_scan_proc(void *arg, const char *k, int32_t ks,
                                const char *v, int32_t vs, int32_t *rs)
{
	struct tkscan *s = arg;

	(void)rs;
	if (k != NULL && (size_t)ks > s->cl && k[s->cl] == '/' &&
	    memcmp(k, s->c, s->cl) == 0) {
		s->n++;
		s->bytes += (uint64_t)vs + (vs ? (unsigned char)v[0] : 0);
	}
	return TKRZW_REC_PROC_NOOP;
}

static int tk_scan(void *p, void *t, const char *c, size_t cl, uint64_t *n,
                   uint64_t *bytes)
{
	struct tkdb *d = p;
	struct tkscan s = { c, cl, 0, 0 };

	(void)t;
	if (!tkrzw_dbm_process_each(d->dbm, tk_scan_proc, &s, false))
		return -1;
	*n = s.n;
	*bytes = s.bytes;
	return 0;
}

static int tk_sync(void *p)
{
	struct tkdb *d = p;

	return tkrzw_dbm_synchronize(d->dbm, true, NULL, NULL, "") ? 0 : -1;
}

const struct bench_engine bench_engine_tkrzw_tiny = {
	.name = "tkrzw-tiny",
	.what = "tkrzw TinyDBM (on-memory hash, num_buckets = 2N)",
	.open = tkt_open,
	.close = tk_close,
	.get = tk_get,
	.put = tk_put,
	.del = tk_del,
	.scan = tk_scan,
};

const struct bench_engine bench_engine_tkrzw_hash = {
	.name = "tkrzw-hash",
	.what = "tkrzw HashDBM (file hash, mmap, num_buckets = 2N)",
	.persistent = 1,
	.open = tkh_open,
	.close = tk_close,
	.get = tk_get,
	.put = tk_put,
	.del = tk_del,
	.scan = tk_scan,
	.sync = tk_sync,
};
#else
const struct bench_engine bench_engine_tkrzw_tiny = {
	.name = "tkrzw-tiny",
	.what = "tkrzw TinyDBM",
	.skip = "tkrzw not found at build time (bench/setup-peers.sh installs "
	        "libtkrzw-dev)",
};
const struct bench_engine bench_engine_tkrzw_hash = {
	.name = "tkrzw-hash",
	.what = "tkrzw HashDBM",
	.skip = "tkrzw not found at build time (bench/setup-peers.sh installs "
	        "libtkrzw-dev)",
};
#endif
