/*
 * SQLite: a WITHOUT ROWID table keyed by the full key, WAL journal with
 * synchronous=NORMAL (commits are not synced; checkpoints are), FULL when
 * every write must be durable. Readers get a connection each (WAL lets them
 * run concurrently); writes go through one shared connection under a mutex,
 * the usual single-writer pattern (concurrent writer connections only meet
 * SQLITE_BUSY and sleep in the busy handler). Statements are prepared once.
 * A large page cache and mmap keep the data set in memory.
 */
#include "engine.h"

#ifdef BENCH_HAVE_SQLITE
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sconn {
	sqlite3 *db;
	sqlite3_stmt *get, *put, *del, *scan;
};

struct sqdb {
	char path[4200];
	int full;
	struct sconn w; /* the writer, also used by the harness thread */
	pthread_mutex_t wmu;
};

static int sc_open(struct sconn *c, const char *path, int full, int create,
                   char *err, size_t errlen)
{
	int rc = sqlite3_open_v2(path, &c->db,
	                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	                             SQLITE_OPEN_NOMUTEX,
	                         NULL);
	char *e = NULL;

	if (rc != SQLITE_OK) {
		bench_errf(err, errlen, "%s", sqlite3_errmsg(c->db));
		sqlite3_close(c->db);
		return -1;
	}
	sqlite3_busy_timeout(c->db, 60000);
	/* Leave the WAL for the next open to recover from, like the log of
	 * every other store here: close is not a measured step, and a
	 * checkpoint-on-close would make the recovery figure meaningless. */
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	rc = sqlite3_exec(
	    c->db,
	    full ? "PRAGMA journal_mode=WAL; PRAGMA "
	           "synchronous=FULL; PRAGMA cache_size=-524288; "
	           "PRAGMA mmap_size=4294967296;"
	         : "PRAGMA journal_mode=WAL; PRAGMA "
	           "synchronous=NORMAL; PRAGMA cache_size=-524288; "
	           "PRAGMA mmap_size=4294967296;",
	    NULL, NULL, &e);
	if (rc == SQLITE_OK && create)
		rc =
		    sqlite3_exec(c->db,
		                 "CREATE TABLE IF NOT EXISTS kv(k BLOB PRIMARY "
		                 "KEY, v BLOB) WITHOUT ROWID",
		                 NULL, NULL, &e);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(c->db, "SELECT v FROM kv WHERE k=?1",
		                        -1, &c->get, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(c->db,
		                        "INSERT OR REPLACE INTO kv(k,v) "
		                        "VALUES(?1,?2)",
		                        -1, &c->put, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(c->db, "DELETE FROM kv WHERE k=?1", -1,
		                        &c->del, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(
		    c->db, "SELECT k,v FROM kv WHERE k>=?1 AND k<?2", -1,
		    &c->scan, NULL);
	if (rc != SQLITE_OK) {
		bench_errf(err, errlen, "%s", e ? e : sqlite3_errmsg(c->db));
		sqlite3_free(e);
		sqlite3_close_v2(c->db);
		return -1;
	}
	return 0;
}

static void sc_close(struct sconn *c)
{
	sqlite3_finalize(c->get);
	sqlite3_finalize(c->put);
	sqlite3_finalize(c->del);
	sqlite3_finalize(c->scan);
	sqlite3_close_v2(c->db);
}

static void *sq_open(const struct bench_open_cfg *cfg, char *err, size_t errlen)
{
	struct sqdb *d = calloc(1, sizeof(*d));

	snprintf(d->path, sizeof(d->path), "%s/kv.sqlite", cfg->dir);
	d->full = cfg->sync_every;
	if (sc_open(&d->w, d->path, d->full, 1, err, errlen)) {
		free(d);
		return NULL;
	}
	pthread_mutex_init(&d->wmu, NULL);
	return d;
}

static void sq_close(void *p)
{
	struct sqdb *d = p;

	sc_close(&d->w);
	free(d);
}

static void *sq_thread_begin(void *p)
{
	struct sqdb *d = p;
	struct sconn *c = calloc(1, sizeof(*c));

	if (sc_open(c, d->path, d->full, 0, NULL, 0)) {
		free(c);
		return NULL;
	}
	return c;
}

static void sq_thread_end(void *p, void *t)
{
	(void)p;
	if (t) {
		sc_close(t);
		free(t);
	}
}

static int sq_get(void *p, void *t, const struct bkey *k, void *buf, size_t cap,
                  size_t *len)
{
	struct sqdb *d = p;
	struct sconn *c = t ? t : &d->w;
	int rc;

	sqlite3_bind_blob(c->get, 1, k->full, (int)k->full_len, SQLITE_STATIC);
	rc = sqlite3_step(c->get);
	if (rc == SQLITE_ROW) {
		size_t vl = (size_t)sqlite3_column_bytes(c->get, 0);
		const void *v = sqlite3_column_blob(c->get, 0);
		*len = vl;
		memcpy(buf, v, vl < cap ? vl : cap);
		rc = 0;
	} else {
		rc = rc == SQLITE_DONE ? BENCH_NOTFOUND : -1;
	}
	sqlite3_reset(c->get);
	return rc;
}

static int sq_write(struct sqdb *d, const struct bkey *k, const void *v,
                    size_t vl, int del)
{
	sqlite3_stmt *s;
	int rc;

	pthread_mutex_lock(&d->wmu);
	s = del ? d->w.del : d->w.put;
	sqlite3_bind_blob(s, 1, k->full, (int)k->full_len, SQLITE_STATIC);
	if (!del)
		sqlite3_bind_blob(s, 2, v, (int)vl, SQLITE_STATIC);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc == SQLITE_DONE)
		rc = del && sqlite3_changes(d->w.db) == 0 ? BENCH_NOTFOUND : 0;
	else
		rc = -1;
	pthread_mutex_unlock(&d->wmu);
	return rc;
}

static int sq_put(void *p, void *t, const struct bkey *k, const void *v,
                  size_t vl)
{
	(void)t;
	return sq_write(p, k, v, vl, 0);
}

static int sq_del(void *p, void *t, const struct bkey *k)
{
	(void)t;
	return sq_write(p, k, NULL, 0, 1);
}

static int sq_scan(void *p, void *t, const char *cn, size_t cl, uint64_t *n,
                   uint64_t *bytes)
{
	struct sqdb *d = p;
	struct sconn *c = t ? t : &d->w;
	char lo[256], hi[256];
	uint64_t cnt = 0, by = 0;

	memcpy(lo, cn, cl);
	lo[cl] = '/';
	memcpy(hi, cn, cl);
	hi[cl] = '/' + 1;
	sqlite3_bind_blob(c->scan, 1, lo, (int)cl + 1, SQLITE_STATIC);
	sqlite3_bind_blob(c->scan, 2, hi, (int)cl + 1, SQLITE_STATIC);
	while (sqlite3_step(c->scan) == SQLITE_ROW) {
		int vl = sqlite3_column_bytes(c->scan, 1);
		const unsigned char *v = sqlite3_column_blob(c->scan, 1);
		cnt++;
		by += (uint64_t)vl + (vl ? v[0] : 0);
	}
	sqlite3_reset(c->scan);
	*n = cnt;
	*bytes = by;
	return 0;
}

static int sq_sync(void *p)
{
	struct sqdb *d = p;
	int rc;

	/* A FULL checkpoint syncs the WAL and the database file. */
	pthread_mutex_lock(&d->wmu);
	rc = sqlite3_wal_checkpoint_v2(d->w.db, NULL, SQLITE_CHECKPOINT_FULL,
	                               NULL, NULL);
	pthread_mutex_unlock(&d->wmu);
	return rc == SQLITE_OK ? 0 : -1;
}

const struct bench_engine bench_engine_sqlite = {
	.name = "sqlite",
	.what = "SQLite " SQLITE_VERSION
	        " (WAL, synchronous=NORMAL, WITHOUT ROWID, mmap)",
	.persistent = 1,
	.open = sq_open,
	.close = sq_close,
	.thread_begin = sq_thread_begin,
	.thread_end = sq_thread_end,
	.get = sq_get,
	.put = sq_put,
	.del = sq_del,
	.scan = sq_scan,
	.sync = sq_sync,
};
#else
const struct bench_engine bench_engine_sqlite = {
	.name = "sqlite",
	.what = "SQLite",
	.skip = "sqlite3 not found at build time (bench/setup-peers.sh "
	        "installs libsqlite3-dev)",
};
#endif
