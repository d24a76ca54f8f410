/*
 * LMDB through its C API. Configured as its docs advise for speed with
 * comparable durability: MDB_NOSYNC|MDB_NOMETASYNC (commits are not
 * fdatasync'ed; mdb_env_sync does it) unless every write must be durable,
 * MDB_NORDAHEAD (the data set fits in RAM), MDB_NOTLS (read transactions
 * belong to our per-thread context, not to the OS thread), and read-only
 * transactions reused with mdb_txn_reset/mdb_txn_renew as the docs
 * recommend. One write transaction per put: LMDB has a single writer.
 */
#include "engine.h"

#ifdef BENCH_HAVE_LMDB
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>

struct ldb {
	MDB_env *env;
	MDB_dbi dbi;
};

static void *lm_open(const struct bench_open_cfg *cfg, char *err, size_t errlen)
{
	struct ldb *db = calloc(1, sizeof(*db));
	MDB_txn *txn;
	int rc;
	size_t map =
	    (size_t)cfg->keys * (cfg->value_size + 128) * 4 + (1ull << 30);
	unsigned int fl = MDB_NORDAHEAD | MDB_NOTLS;

	if (!cfg->sync_every)
		fl |= MDB_NOSYNC | MDB_NOMETASYNC;
	if ((rc = mdb_env_create(&db->env)) ||
	    (rc = mdb_env_set_mapsize(db->env, map)) ||
	    (rc = mdb_env_set_maxreaders(db->env, 512)) ||
	    (rc = mdb_env_open(db->env, cfg->dir, fl, 0600)) ||
	    (rc = mdb_txn_begin(db->env, NULL, 0, &txn))) {
		bench_errf(err, errlen, "%s", mdb_strerror(rc));
		if (db->env)
			mdb_env_close(db->env);
		free(db);
		return NULL;
	}
	if ((rc = mdb_dbi_open(txn, NULL, 0, &db->dbi)) ||
	    (rc = mdb_txn_commit(txn))) {
		bench_errf(err, errlen, "%s", mdb_strerror(rc));
		mdb_env_close(db->env);
		free(db);
		return NULL;
	}
	return db;
}

static void lm_close(void *d)
{
	struct ldb *db = d;

	mdb_env_close(db->env); /* the harness syncs first when it matters */
	free(db);
}

static void *lm_thread_begin(void *d)
{
	struct ldb *db = d;
	MDB_txn *txn = NULL;

	if (mdb_txn_begin(db->env, NULL, MDB_RDONLY, &txn) != 0)
		return NULL;
	mdb_txn_reset(txn);
	return txn;
}

static void lm_thread_end(void *d, void *t)
{
	(void)d;
	if (t)
		mdb_txn_abort(t);
}

static MDB_txn *rtxn(struct ldb *db, void *t)
{
	MDB_txn *txn = t;

	if (txn) {
		if (mdb_txn_renew(txn) != 0)
			return NULL;
		return txn;
	}
	if (mdb_txn_begin(db->env, NULL, MDB_RDONLY, &txn) != 0)
		return NULL;
	return txn;
}

static void rtxn_done(MDB_txn *txn, void *t)
{
	if (t)
		mdb_txn_reset(txn);
	else
		mdb_txn_abort(txn);
}

static int lm_get(void *d, void *t, const struct bkey *k, void *buf, size_t cap,
                  size_t *len)
{
	struct ldb *db = d;
	MDB_txn *txn = rtxn(db, t);
	MDB_val key = { k->full_len, (void *)k->full }, val;
	int rc;

	if (txn == NULL)
		return -1;
	rc = mdb_get(txn, db->dbi, &key, &val);
	if (rc == 0) {
		*len = val.mv_size;
		memcpy(buf, val.mv_data, val.mv_size < cap ? val.mv_size : cap);
	}
	rtxn_done(txn, t);
	return rc == 0 ? 0 : rc == MDB_NOTFOUND ? BENCH_NOTFOUND : -1;
}

static int lm_write(struct ldb *db, const struct bkey *k, const void *v,
                    size_t vl, int del)
{
	MDB_txn *txn;
	MDB_val key = { k->full_len, (void *)k->full };
	MDB_val val = { vl, (void *)v };
	int rc = mdb_txn_begin(db->env, NULL, 0, &txn);

	if (rc)
		return -1;
	rc = del ? mdb_del(txn, db->dbi, &key, NULL)
	         : mdb_put(txn, db->dbi, &key, &val, 0);
	if (rc) {
		mdb_txn_abort(txn);
		return rc == MDB_NOTFOUND ? BENCH_NOTFOUND : -1;
	}
	return mdb_txn_commit(txn) ? -1 : 0;
}

static int lm_put(void *d, void *t, const struct bkey *k, const void *v,
                  size_t vl)
{
	(void)t;
	return lm_write(d, k, v, vl, 0);
}

static int lm_del(void *d, void *t, const struct bkey *k)
{
	(void)t;
	return lm_write(d, k, NULL, 0, 1);
}

static int lm_scan(void *d, void *t, const char *c, size_t cl, uint64_t *n,
                   uint64_t *bytes)
{
	struct ldb *db = d;
	MDB_txn *txn = rtxn(db, t);
	MDB_cursor *cur;
	char pfx[256];
	MDB_val key, val;
	uint64_t cnt = 0, by = 0;
	int rc;

	if (txn == NULL || cl + 1 >= sizeof(pfx))
		return -1;
	memcpy(pfx, c, cl);
	pfx[cl] = '/';
	key.mv_size = cl + 1;
	key.mv_data = pfx;
	if (mdb_cursor_open(txn, db->dbi, &cur)) {
		rtxn_done(txn, t);
		return -1;
	}
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		if (key.mv_size < cl + 1 || memcmp(key.mv_data, pfx, cl + 1))
			break;
		cnt++;
		by += val.mv_size + *(unsigned char *)val.mv_data;
	}
	mdb_cursor_close(cur);
	rtxn_done(txn, t);
	*n = cnt;
	*bytes = by;
	return 0;
}

static int lm_sync(void *d)
{
	struct ldb *db = d;

	return mdb_env_sync(db->env, 1) ? -1 : 0;
}

const struct bench_engine bench_engine_lmdb = {
	.name = "lmdb",
	.what = "LMDB"
	        " (NOSYNC|NOMETASYNC async, reused read txns)",
	.persistent = 1,
	.open = lm_open,
	.close = lm_close,
	.thread_begin = lm_thread_begin,
	.thread_end = lm_thread_end,
	.get = lm_get,
	.put = lm_put,
	.del = lm_del,
	.scan = lm_scan,
	.sync = lm_sync,
};
#else
const struct bench_engine bench_engine_lmdb = {
	.name = "lmdb",
	.what = "LMDB",
	.skip = "lmdb not found at build time (bench/setup-peers.sh installs "
	        "liblmdb-dev)",
};
#endif
