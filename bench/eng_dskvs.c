/*
 * dskvs through its public API only, as a user would link it: async mode
 * (the default) unless the workload asks every write to be durable, then
 * DSKVS_SYNC_ALWAYS (group commit across the writing threads).
 * DSKVS_BENCH_RECOVERY_THREADS=N sets dskvs_options.recovery_threads, to
 * compare replay on one thread with the default side by side;
 * DSKVS_BENCH_QUEUE_CAPACITY=N sets dskvs_options.queue_capacity (the lag
 * workload's unthrottled row, for the default's justification).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dskvs.h"
#include "engine.h"

static void *dk_open(const struct bench_open_cfg *cfg, char *err, size_t errlen)
{
	dskvs_options o;
	dskvs *s = NULL;
	int rc;

	dskvs_options_init(&o);
	o.sync_mode = cfg->sync_every ? DSKVS_SYNC_ALWAYS : DSKVS_SYNC_ASYNC;
	const char *rt = getenv("DSKVS_BENCH_RECOVERY_THREADS");
	if (rt != NULL && *rt)
		o.recovery_threads = (unsigned)strtoul(rt, NULL, 10);
	const char *qc = getenv("DSKVS_BENCH_QUEUE_CAPACITY");
	if (qc != NULL && *qc)
		o.queue_capacity = (unsigned)strtoul(qc, NULL, 10);
	rc = dskvs_open(cfg->dir, &o, &s);
	if (rc != DSKVS_OK) {
		bench_errf(err, errlen, "%s (%s)", dskvs_strerror(rc),
		           dskvs_errmsg(NULL));
		return NULL;
	}
	return s;
}

static void dk_close(void *db)
{
	int rc = dskvs_close(db);

	if (rc != DSKVS_OK)
		fprintf(stderr, "dskvs_close: %s\n", dskvs_strerror(rc));
}

static int dk_get(void *db, void *t, const struct bkey *k, void *buf,
                  size_t cap, size_t *len)
{
	int rc = dskvs_get(db, k->full, buf, cap, len);

	(void)t;
	if (rc == DSKVS_OK || rc == DSKVS_ERANGE)
		return 0;
	return rc == DSKVS_NOTFOUND ? BENCH_NOTFOUND : rc;
}

static int dk_put(void *db, void *t, const struct bkey *k, const void *v,
                  size_t len)
{
	(void)t;
	return dskvs_put(db, k->full, v, len, NULL, NULL);
}

static int dk_del(void *db, void *t, const struct bkey *k)
{
	int rc = dskvs_delete(db, k->full);

	(void)t;
	return rc == DSKVS_NOTFOUND ? BENCH_NOTFOUND : rc;
}

struct visit {
	uint64_t n, bytes;
};

static int dk_visit(const char *m, size_t ml, const void *v, size_t vl,
                    void *arg)
{
	struct visit *x = arg;

	(void)m;
	(void)ml;
	x->n++;
	x->bytes += vl + (vl ? *(const unsigned char *)v : 0);
	return 0;
}

static int dk_scan(void *db, void *t, const char *c, size_t cl, uint64_t *n,
                   uint64_t *bytes)
{
	char name[256];
	struct visit x = { 0, 0 };
	int rc;

	(void)t;
	if (cl >= sizeof(name))
		return -1;
	memcpy(name, c, cl);
	name[cl] = 0;
	rc = dskvs_get_all(db, name, dk_visit, &x);
	*n = x.n;
	*bytes = x.bytes;
	return rc;
}

static int dk_sync(void *db)
{
	return dskvs_sync(db);
}

struct memacc {
	uint64_t n, slots;
};

static int dk_coll_mem(const char *name, size_t nl, uint64_t members,
                       uint64_t vbytes, void *arg)
{
	struct memacc *m = arg;
	uint64_t cap = 64;

	(void)name;
	(void)nl;
	(void)vbytes;
	/* ck_ht doubles when more than half full */
	while (members * 2 > cap)
		cap <<= 1;
	m->n += members;
	m->slots += cap * 32; /* Debian's ck_ht_entry: 32 bytes, no packing */
	return 0;
}

/* Where an entry's bytes go, from the public stats plus the block layout
 * of src/blk.h (a 26-byte header: the retire link, seq, refs, lengths;
 * the member name and a NUL; the value; no copy of the collection name),
 * rounded to the slab's 8-byte classes (src/slab.h; over 1016 bytes,
 * glibc's malloc: 8 bytes of chunk header, 16-byte granules). An
 * estimate, shown next to the measured RSS growth. */
static void dk_mem_report(void *db, char *out, size_t outlen)
{
	struct memacc m = { 0, 0 };
	dskvs_stats st;

	if (dskvs_stats_get(db, &st) != DSKVS_OK || st.entries == 0)
		return;
	dskvs_list_collections(db, dk_coll_mem, &m);
	/* live_bytes counts member names and values */
	double kv = (double)st.live_bytes / (double)st.entries;
	double req = 26 + kv + 1; /* header, member, NUL, value */
	double chunk = (uint64_t)(req + 7) / 8 * 8 <= 1016
	                   ? (double)((uint64_t)(req + 7) / 8 * 8)
	                   : (double)((uint64_t)(req + 8 + 15) / 16 * 16);
	snprintf(out, outlen,
	         "est: slots=%.1fB/entry(32B each) block_header=26B "
	         "alloc_overhead=%.1fB",
	         m.n ? (double)m.slots / (double)m.n : 0, chunk - req);
}

const struct bench_engine bench_engine_dskvs = {
	.name = "dskvs",
	.what = "dskvs " DSKVS_VERSION_STRING
	        " (public API; async, or DSKVS_SYNC_ALWAYS for durable)",
	.persistent = 1,
	.open = dk_open,
	.close = dk_close,
	.get = dk_get,
	.put = dk_put,
	.del = dk_del,
	.scan = dk_scan,
	.sync = dk_sync,
	.mem_report = dk_mem_report,
};
