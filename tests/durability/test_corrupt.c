/*
 * Corruption sweep over a small valid log holding puts (one with an empty
 * value), deletes and DeleteAlls, each written and synced alone, so that
 * each is a batch of its own followed by a mark (format.c), and closed
 * cleanly:
 *
 *  - truncated at every offset: dskvs_open succeeds with the records that
 *    are whole (none when even the file header is cut: it is rewritten),
 *    moves the cut bytes aside and cuts the file back to the last whole
 *    record or mark (then writes a mark if the log ends in a record:
 *    everything left is synced), and dskvs_verify counts the same records
 *    and reports the torn tail;
 *  - each byte flipped in turn (xor 0xff, then xor 0x01), one at a time on
 *    a copy: in the file header, DSKVS_ECORRUPT (DSKVS_EVERSION when the
 *    major version grew); in any record, and in any mark but the last,
 *    DSKVS_ECORRUPT naming that record's offset, with the file left
 *    untouched, and dskvs_verify saying the same: the mark after it proves
 *    it was synced; in the last mark (which proves nothing but itself), a
 *    torn tail: every record kept, the file cut there.
 *
 * 0 crashes (and, under ASan, 0 leaks and 0 bad accesses) in all of it.
 * The record layout is read from the format comment of src/format.c.
 */
#include "dt.h"
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- the history
 * -------------------------------------------------------------
 */

#define NKEYS 7
static const char *const keys[NKEYS] = { "a/k1", "a/k2", "b/k1", "b/k2",
	                                 "c/k1", "c/k2", "d/x" };

struct op {
	enum dt_kind kind;
	const char *key; /* a key, or a collection for DT_DELALL */
	const char *val;
};

static const struct op hist[] = {
	{ DT_PUT, "a/k1", "one" },
	{ DT_PUT, "a/k2", "two-two" },
	{ DT_PUT, "b/k1", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb" },
	{ DT_DEL, "a/k1", NULL },
	{ DT_PUT, "c/k1", "c" },
	{ DT_DELALL, "b", NULL },
	{ DT_PUT, "a/k1", "again" },
	{ DT_PUT, "b/k2", "bee" },
	{ DT_DEL, "a/k2", NULL },
	{ DT_PUT, "c/k2", "" },
	{ DT_DELALL, "c", NULL },
	{ DT_PUT, "d/x", "last" },
};
#define NREC (sizeof(hist) / sizeof(hist[0]))

/* The value of each key after the first k records (NULL: absent). */
static void state_after(size_t k, const char *vals[NKEYS])
{
	for (size_t i = 0; i < NKEYS; i++)
		vals[i] = NULL;
	for (size_t r = 0; r < k; r++) {
		const struct op *o = &hist[r];
		size_t cl = strlen(o->key);
		for (size_t i = 0; i < NKEYS; i++) {
			bool hit = o->kind == DT_DELALL
			               ? strncmp(keys[i], o->key, cl) == 0 &&
			                     keys[i][cl] == '/'
			               : strcmp(keys[i], o->key) == 0;
			if (hit)
				vals[i] = o->kind == DT_PUT ? o->val : NULL;
		}
	}
}

static unsigned char *good; /* the valid log */
static size_t good_len;
static size_t rec_off[NREC + 1]; /* record starts; [NREC] = file end */
/* Every record and mark: starts, [nall] = file end; and which are marks. */
static size_t all_off[2 * NREC + 2];
static bool all_mark[2 * NREC + 2];
static size_t nall;
static char *dirs[64];
static uint64_t *counts; /* shared: outcomes by kind */
enum { C_OK, C_CORRUPT, C_VERSION, C_N };

static int no_sync(int fd)
{
	(void)fd;
	return 0;
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void write_log(void *arg)
{
	const char *dir = arg;
	dskvs *s;
	DT_RC(dskvs_open(dir, NULL, &s), DSKVS_OK);
	for (size_t r = 0; r < NREC; r++) {
		const struct op *o = &hist[r];
		if (o->kind == DT_PUT)
			DT_RC(dskvs_put(s, o->key, o->val, strlen(o->val), NULL,
			                NULL),
			      DSKVS_OK);
		else if (o->kind == DT_DEL)
			DT_RC(dskvs_delete(s, o->key), DSKVS_OK);
		else
			DT_RC(dskvs_delete_all(s, o->key), DSKVS_OK);
		/* One batch per record, each synced before the next is
		 * written: damage to a record is then damage to synced
		 * data whenever a record follows it. */
		DT_RC(dskvs_sync(s), DSKVS_OK);
	}
	DT_RC(dskvs_close(s), DSKVS_OK);
}

static void build_log(void)
{
	char *dir = dt_mkdtemp("corrupt-src");
	/* In a leaf process: see dt_run_forked. */
	int status = dt_run_forked(write_log, dir);
	DT_CHECK(status == 0, "writing the log failed (%#x)", status);
	char *log = dt_fmt("%s/" DSKVS_LOG_NAME, dir);
	good = dt_read_file(log, &good_len);
	DT_CHECK(good != NULL, "read %s", log);
	free(log);
	dt_rmtree(dir);
	free(dir);

	/* Record boundaries, and one record of each type, in order, each
	 * followed by its mark. */
	size_t off = DSKVS_FILE_HDR;
	for (size_t r = 0; r < NREC; r++) {
		DT_CHECK(off + DSKVS_REC_HDR <= good_len, "record %zu", r);
		rec_off[r] = off;
		DT_CHECK(good[off + 8] == (unsigned)hist[r].kind,
		         "record %zu has type %u, not %u", r, good[off + 8],
		         hist[r].kind);
		all_off[nall] = off;
		all_mark[nall++] = false;
		off += DSKVS_REC_HDR + le32(good + off + 12) +
		       le32(good + off + 16);
		DT_CHECK(off + DSKVS_REC_HDR <= good_len &&
		             good[off + 8] == DSKVS_REC_MARK,
		         "record %zu is not followed by a mark", r);
		all_off[nall] = off;
		all_mark[nall++] = true;
		off += DSKVS_REC_HDR;
	}
	DT_CHECK(off == good_len, "records end at %zu, file at %zu", off,
	         good_len);
	rec_off[NREC] = off;
	all_off[nall] = off;
}

/* ---- one damaged copy
 * ----------------------------------------------------------
 */

struct expect {
	int rc;         /* of dskvs_open and dskvs_verify */
	size_t records; /* whole records before the damage (rc OK) */
	size_t keep;    /* rc OK: where open cuts the log */
	size_t after;   /* rc OK: its length after open (keep, plus the mark
	                   open writes when the log ended in a record) */
	size_t bad_off; /* ECORRUPT: offset the message must name */
	bool torn;      /* rc OK: verify reports a torn tail */
	bool in_header; /* damage in the file header */
};

static void check_store(dskvs *s, size_t k, const char *what)
{
	const char *vals[NKEYS];
	dskvs_stats st;
	size_t present = 0;
	state_after(k, vals);
	for (size_t i = 0; i < NKEYS; i++) {
		char buf[64];
		size_t len;
		int rc = dskvs_get(s, keys[i], buf, sizeof(buf), &len);
		if (vals[i] == NULL) {
			DT_CHECK(rc == DSKVS_NOTFOUND, "%s: %s is %s", what,
			         keys[i], dskvs_err_name(rc));
			continue;
		}
		present++;
		DT_CHECK(rc == DSKVS_OK && len == strlen(vals[i]) &&
		             memcmp(buf, vals[i], len) == 0,
		         "%s: %s: %s, %zu bytes", what, keys[i],
		         dskvs_err_name(rc), len);
	}
	DT_RC(dskvs_stats_get(s, &st), DSKVS_OK);
	DT_CHECK(st.entries == present, "%s: %llu entries, %zu expected", what,
	         (unsigned long long)st.entries, present);
}

static void try_copy(const char *dir, const unsigned char *data, size_t len,
                     const struct expect *e, const char *what)
{
	char *log = dt_fmt("%s/" DSKVS_LOG_NAME, dir);
	dskvs_verify_report rep;
	dskvs *s = NULL;

	dt_empty_dir(dir);
	dt_write_file(log, data, len);

	int vrc = dskvs_verify(dir, NULL, NULL, &rep);
	DT_CHECK(vrc == e->rc, "%s: dskvs_verify says %s, expected %s (%s)",
	         what, dskvs_err_name(vrc), dskvs_err_name(e->rc),
	         dskvs_errmsg(NULL));
	if (e->rc == DSKVS_OK) {
		DT_CHECK(rep.records == e->records &&
		             rep.torn_tail == e->torn && rep.damaged == 0,
		         "%s: verify counted %llu records (torn %d, damaged "
		         "%llu), expected %zu (torn %d)",
		         what, (unsigned long long)rep.records, rep.torn_tail,
		         (unsigned long long)rep.damaged, e->records, e->torn);
		if (len >= DSKVS_FILE_HDR)
			DT_CHECK(rep.valid_bytes == e->keep,
			         "%s: verify: valid_bytes %llu, expected %zu",
			         what, (unsigned long long)rep.valid_bytes,
			         e->keep);
		if (e->torn && len >= DSKVS_FILE_HDR)
			DT_CHECK(rep.torn_offset == e->keep &&
			             rep.torn_bytes == len - e->keep &&
			             rep.torn_file[0] != '\0',
			         "%s: verify: torn tail at %llu, %llu bytes, "
			         "file \"%s\"",
			         what, (unsigned long long)rep.torn_offset,
			         (unsigned long long)rep.torn_bytes,
			         rep.torn_file);
	} else if (e->rc == DSKVS_ECORRUPT && !e->in_header) {
		DT_CHECK(rep.damaged >= 1 && rep.records == e->records,
		         "%s: verify: %llu damaged, %llu records (expected "
		         "%zu)",
		         what, (unsigned long long)rep.damaged,
		         (unsigned long long)rep.records, e->records);
	}

	int rc = dskvs_open(dir, NULL, &s);
	DT_CHECK(rc == e->rc, "%s: dskvs_open says %s, expected %s (%s)", what,
	         dskvs_err_name(rc), dskvs_err_name(e->rc), dskvs_errmsg(NULL));
	if (rc == DSKVS_OK) {
		check_store(s, e->records, what);
		/* Cut back to the last whole record (a cut header is
		 * rewritten whole), the cut bytes kept aside. */
		long long want =
		    len < DSKVS_FILE_HDR ? DSKVS_FILE_HDR : (long long)e->after;
		/* A log cut back to its header gets the mark of where the
		 * numbering goes on (recover.c). */
		if (len >= DSKVS_FILE_HDR && want == DSKVS_FILE_HDR)
			want += DSKVS_REC_HDR;
		DT_CHECK(dt_file_size(log) == want,
		         "%s: log is %lld bytes after open, expected %lld",
		         what, dt_file_size(log), want);
		if (e->torn && len > DSKVS_FILE_HDR) {
			char *kept = dt_fmt("%s/dskvs.torn.%zu", dir, e->keep);
			size_t kn;
			unsigned char *kd = dt_read_file(kept, &kn);
			DT_CHECK(kd != NULL && kn == len - e->keep &&
			             memcmp(kd, data + e->keep, kn) == 0,
			         "%s: %s does not hold the %zu cut bytes", what,
			         kept, len - e->keep);
			free(kd);
			free(kept);
		}
		/* (Close may then add a mark, when the log ended unproven.) */
		DT_RC(dskvs_close(s), DSKVS_OK);
		__atomic_add_fetch(&counts[C_OK], 1, __ATOMIC_RELAXED);
	} else {
		if (rc == DSKVS_ECORRUPT && !e->in_header) {
			char needle[48];
			snprintf(needle, sizeof(needle), "offset %zu",
			         e->bad_off);
			DT_CHECK(strstr(dskvs_errmsg(NULL), needle) != NULL,
			         "%s: message does not name %s: %s", what,
			         needle, dskvs_errmsg(NULL));
		}
		/* A refused log is left as it was. */
		size_t n;
		unsigned char *now = dt_read_file(log, &n);
		DT_CHECK(now != NULL && n == len && memcmp(now, data, n) == 0,
		         "%s: the refused log was changed", what);
		free(now);
		__atomic_add_fetch(
		    &counts[rc == DSKVS_EVERSION ? C_VERSION : C_CORRUPT], 1,
		    __ATOMIC_RELAXED);
	}
	free(log);
}

/* ---- the tasks
 * ------------------------------------------------------------------- [0,
 * good_len]: truncate at t; then flips: xor 0xff, then xor 0x01.
 */

/* The record or mark (index into all_off) that byte `off` (< good_len)
 * belongs to. */
static size_t piece_of(size_t off)
{
	size_t r = 0;
	while (all_off[r + 1] <= off)
		r++;
	return r;
}

/* Data records among the first k pieces. */
static size_t data_before(size_t k)
{
	size_t n = 0;
	for (size_t i = 0; i < k; i++)
		n += !all_mark[i];
	return n;
}

static void task(size_t t, unsigned worker, void *arg)
{
	struct expect e = { .rc = DSKVS_OK };
	char what[64];
	(void)arg;

	if (t <= good_len) {
		size_t len = t;
		snprintf(what, sizeof(what), "truncated to %zu bytes", len);
		size_t p = len < DSKVS_FILE_HDR ? 0
		           : len == good_len    ? nall
		                                : piece_of(len);
		e.records = data_before(p);
		e.keep = len < DSKVS_FILE_HDR ? DSKVS_FILE_HDR : all_off[p];
		e.after =
		    e.keep + (p > 0 && !all_mark[p - 1] ? DSKVS_REC_HDR : 0);
		e.torn = len < DSKVS_FILE_HDR || len != e.keep;
		try_copy(dirs[worker], good, len, &e, what);
		return;
	}
	t -= good_len + 1;
	size_t off = t % good_len;
	unsigned char mask = t < good_len ? 0xff : 0x01;
	unsigned char *copy = malloc(good_len);
	DT_CHECK(copy != NULL, "out of memory");
	memcpy(copy, good, good_len);
	copy[off] ^= mask;
	snprintf(what, sizeof(what), "byte %zu xor %#x", off, mask);
	if (off < DSKVS_FILE_HDR) {
		unsigned major = copy[8] | copy[9] << 8;
		e.in_header = true;
		e.rc = major > DSKVS_FORMAT_MAJOR ? DSKVS_EVERSION
		                                  : DSKVS_ECORRUPT;
	} else {
		size_t p = piece_of(off);
		if (p == nall - 1) {
			/* The last mark: nothing after it proves it. */
			e.records = NREC;
			e.keep = all_off[p];
			e.after = e.keep + DSKVS_REC_HDR; /* a fresh mark */
			e.torn = true;
		} else {
			e.rc = DSKVS_ECORRUPT;
			e.bad_off = all_off[p];
			e.records = all_mark[p] ? NREC : NREC - 1;
		}
	}
	try_copy(dirs[worker], copy, good_len, &e, what);
	free(copy);
}

int main(void)
{
	unsigned workers = dt_jobs(8);
	dt_seed("test_corrupt", 0); /* no randomness; prints the variant */
	DT_CHECK(workers <= 64, "at most 64 workers");
	counts = mmap(NULL, C_N * sizeof(*counts), PROT_READ | PROT_WRITE,
	              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	DT_CHECK(counts != MAP_FAILED, "mmap: %s", strerror(errno));
	/* Recovery's syncs are not what this test is about. */
	dskvs__io.fdatasync = no_sync;
	dskvs__io.fsync = no_sync;
	build_log();
	for (unsigned w = 0; w < workers; w++)
		dirs[w] = dt_mkdtemp("corrupt");
	size_t ntasks = (good_len + 1) + 2 * good_len;
	printf("log: %zu bytes, %zu records (puts, deletes, delete-alls)\n",
	       good_len, NREC);
	fflush(stdout);
	unsigned failed = dt_parallel(ntasks, workers, task, NULL);
	printf("corruption sweep: %zu truncations, %zu byte flips; outcomes: "
	       "%llu opened, %llu DSKVS_ECORRUPT, %llu DSKVS_EVERSION\n",
	       good_len + 1, 2 * good_len, (unsigned long long)counts[C_OK],
	       (unsigned long long)counts[C_CORRUPT],
	       (unsigned long long)counts[C_VERSION]);
	DT_CHECK(failed == 0, "%u workers failed", failed);
	DT_CHECK(counts[C_OK] + counts[C_CORRUPT] + counts[C_VERSION] == ntasks,
	         "not every case ran");
	for (unsigned w = 0; w < workers; w++) {
		dt_rmtree(dirs[w]);
		free(dirs[w]);
	}
	free(good);
	munmap(counts, C_N * sizeof(*counts));
	return 0;
}
