/*
 * null: an engine that does nothing, so the harness's own cost per
 * operation (the loop, the key formatted from its index, the indirect call,
 * the latency sampling) is measured like any engine and printed beside
 * every table. get finds every key (but the harness's absent keys, 'x' as
 * their first member byte, so readmissing sees what it expects) and copies
 * a fixed 8-byte value; put and delete succeed; a scan visits nothing. Not
 * persistent: the workloads that need files skip it.
 */
#include <string.h>

#include "engine.h"

static char null_db; /* a non-NULL handle; nothing behind it */

static void *null_open(const struct bench_open_cfg *cfg, char *err,
                       size_t errlen)
{
	(void)cfg;
	(void)err;
	(void)errlen;
	return &null_db;
}

static void null_close(void *db)
{
	(void)db;
}

static int null_get(void *db, void *t, const struct bkey *k, void *buf,
                    size_t cap, size_t *len)
{
	(void)db;
	(void)t;
	if (k->full[k->coll_len + 1] == 'x')
		return BENCH_NOTFOUND;
	if (cap >= 8)
		memcpy(buf, "nullval", 8);
	*len = 8;
	return 0;
}

static int null_put(void *db, void *t, const struct bkey *k, const void *v,
                    size_t len)
{
	(void)db;
	(void)t;
	(void)k;
	(void)v;
	(void)len;
	return 0;
}

static int null_del(void *db, void *t, const struct bkey *k)
{
	(void)db;
	(void)t;
	(void)k;
	return 0;
}

static int null_scan(void *db, void *t, const char *c, size_t cl, uint64_t *n,
                     uint64_t *bytes)
{
	(void)db;
	(void)t;
	(void)c;
	(void)cl;
	*n = 0;
	*bytes = 0;
	return 0;
}

const struct bench_engine bench_engine_null = {
	.name = "null",
	.what = "does nothing (get: found, 8 bytes; put, delete: ok): the "
	        "harness's own cost per op",
	.open = null_open,
	.close = null_close,
	.get = null_get,
	.put = null_put,
	.del = null_del,
	.scan = null_scan,
};
