/*
 * Recovery from damaged logs: a torn tail at every byte offset, damage in the
 * middle of the file, version and header checks, and dskvs_verify on damaged
 * copies.
 *
 * The tests never parse the record format. They learn where records end by
 * writing one record at a time with dskvs_sync and noting the log's size
 * after each; they only rely on the documented file header (32 bytes: 8-byte
 * magic, little-endian uint16 major at offset 8, minor at offset 10).
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

TestSuite(recovery, .init = tu_setup, .fini = tu_teardown, .timeout = 10);

/* ---- a small known history ------------------------------------------------
 */

enum op_kind { OP_PUT, OP_DEL, OP_DELALL };
struct op {
	enum op_kind kind;
	const char *key;
	const char *val; /* NULL: a value of `fill` bytes */
	size_t fill;
};

static const struct op hist[] = {
	{ OP_PUT, "a/k1", "one", 0 },   { OP_PUT, "a/k2", NULL, 24 },
	{ OP_PUT, "a/k1", "three", 0 }, { OP_DEL, "a/k2", NULL, 0 },
	{ OP_PUT, "b/k", NULL, 48 },    { OP_DELALL, "a", NULL, 0 },
	{ OP_PUT, "a/k3", "seven", 0 },
};
#define NHIST (sizeof(hist) / sizeof(hist[0]))

static void op_value(const struct op *o, char *buf, size_t *len)
{
	if (o->val) {
		*len = strlen(o->val);
		memcpy(buf, o->val, *len);
	} else {
		*len = o->fill;
		memset(buf, 'f', o->fill);
	}
}

static void apply_store(dskvs *s, const struct op *o)
{
	char buf[64];
	size_t len;

	switch (o->kind) {
	case OP_PUT:
		op_value(o, buf, &len);
		tu_put(s, o->key, buf, len);
		break;
	case OP_DEL:
		cr_assert_eq(dskvs_delete(s, o->key), DSKVS_OK);
		break;
	case OP_DELALL:
		cr_assert_eq(dskvs_delete_all(s, o->key), DSKVS_OK);
		break;
	}
}

static void apply_model(struct tu_snap *m, const struct op *o)
{
	char buf[64];
	size_t len;

	switch (o->kind) {
	case OP_PUT:
		op_value(o, buf, &len);
		tu_snap_add(m, o->key, buf, len);
		break;
	case OP_DEL:
		tu_snap_del(m, o->key);
		break;
	case OP_DELALL:
		tu_snap_del_coll(m, o->key);
		break;
	}
}

/* end[k]: log size once the first k operations are on disk (end[0] is the
 * header alone). Writes the history into dir and closes the store. */
static void write_history(const char *dir, uint64_t end[NHIST + 1])
{
	char *log = tu_log_path(dir);
	dskvs *s = tu_open(dir);

	cr_assert_eq(dskvs_sync(s), DSKVS_OK);
	end[0] = TU_HEADER_SIZE;
	for (size_t i = 0; i < NHIST; i++) {
		apply_store(s, &hist[i]);
		cr_assert_eq(dskvs_sync(s), DSKVS_OK);
		end[i + 1] = tu_file_size(log);
		cr_assert_gt(end[i + 1], end[i],
		             "operation %zu did not grow the log", i);
	}
	tu_close(s);
	cr_assert_eq(tu_file_size(log), end[NHIST],
	             "close changed a log with nothing pending");
	free(log);
}

static void model_after(size_t k, struct tu_snap *m)
{
	memset(m, 0, sizeof(*m));
	for (size_t i = 0; i < k; i++)
		apply_model(m, &hist[i]);
	tu_snap_sort(m);
}

static void assert_store_is(dskvs *s, const struct tu_snap *want)
{
	struct tu_snap got;

	tu_snap_take(s, &got);
	tu_snap_assert_eq(want, &got);
	tu_snap_free(&got);
}

/* Number of whole operations in the first len bytes: operation k's record
 * ends a mark before end[k]. */
static size_t whole_ops(const uint64_t end[NHIST + 1], uint64_t len)
{
	size_t k = 0;

	while (k < NHIST && end[k + 1] - TU_MARK_SIZE <= len)
		k++;
	return k;
}

/* The log's length after open cut a log cut at len with k whole
 * operations: end[k]. Open cuts after the mark of operation k when that
 * is whole, else right after its record, and then writes the mark itself
 * (everything left is synced, and the log says so at once). */
static uint64_t cut_point(const uint64_t end[NHIST + 1], size_t k, uint64_t len)
{
	(void)len;
	/* A log cut back to its header gets the mark of where the numbering
	 * goes on (recover.c); one that ends with a mark has it written over
	 * that mark. */
	return end[k] == TU_HEADER_SIZE ? TU_HEADER_SIZE + 32 : end[k];
}

/* Cut the log at every offset and reopen with `threads` replay threads. */
static void torn_tail_every_offset(unsigned threads)
{
	uint64_t end[NHIST + 1];
	dskvs_options o;

	dskvs_options_init(&o);
	o.recovery_threads = threads;
	size_t full_len;

	write_history(tu_dir, end);
	char *log = tu_log_path(tu_dir);
	char *full = tu_read_file(log, &full_len);
	char *dir = tu_subdir("cut");
	char *log2 = tu_log_path(dir);
	struct tu_snap models[NHIST + 1];
	for (size_t k = 0; k <= NHIST; k++)
		model_after(k, &models[k]);

	for (uint64_t len = TU_HEADER_SIZE; len <= full_len; len++) {
		tu_write_file(log2, full, len);
		size_t k = whole_ops(end, len);
		dskvs *s = NULL;
		int rc = dskvs_open(dir, &o, &s);
		cr_assert_eq(rc, DSKVS_OK,
		             "log cut at %llu bytes: open = %s (%s)",
		             (unsigned long long)len, dskvs_err_name(rc),
		             dskvs_errmsg(NULL));
		uint64_t now = tu_file_size(log2),
		         want = cut_point(end, k, len);
		cr_assert_eq(now, want,
		             "log cut at %llu: truncated to %llu, want %llu",
		             (unsigned long long)len, (unsigned long long)now,
		             (unsigned long long)want);
		assert_store_is(s, &models[k]);
		tu_close(s);
	}
	for (size_t k = 0; k <= NHIST; k++)
		tu_snap_free(&models[k]);
	free(dir);
	free(log2);
	free(log);
	free(full);
}

Test(recovery, torn_tail_at_every_offset_keeps_exact_prefix, .timeout = 60)
{
	torn_tail_every_offset(1);
}

/* The same through the two-pass replay (check, then apply per collection on
 * several threads): the history has two collections, one dropped by a
 * delete-all and re-created. */
Test(recovery, torn_tail_with_parallel_replay_keeps_exact_prefix, .timeout = 60)
{
	torn_tail_every_offset(3);
}

Test(recovery, torn_header_opens_as_empty_store)
{
	/* A crash while the header of a new log was being written. */
	uint64_t end[NHIST + 1];
	size_t full_len;

	write_history(tu_dir, end);
	char *log = tu_log_path(tu_dir);
	char *full = tu_read_file(log, &full_len);
	for (size_t len = 0; len < TU_HEADER_SIZE; len++) {
		tu_write_file(log, full, len);
		dskvs *s = NULL;
		int rc = dskvs_open(tu_dir, NULL, &s);
		cr_assert_eq(rc, DSKVS_OK, "header cut at %zu: open = %s (%s)",
		             len, dskvs_err_name(rc), dskvs_errmsg(NULL));
		dskvs_stats stats;
		cr_assert_eq(dskvs_stats_get(s, &stats), DSKVS_OK);
		cr_assert_eq(stats.entries, 0);
		tu_put_str(s, "x/y", "z");
		tu_close(s);
		s = tu_open(tu_dir);
		tu_check_str(s, "x/y", "z");
		tu_close(s);
	}
	free(log);
	free(full);
}

Test(recovery, writes_after_truncation_survive)
{
	uint64_t end[NHIST + 1];
	size_t full_len;

	write_history(tu_dir, end);
	char *log = tu_log_path(tu_dir);
	char *full = tu_read_file(log, &full_len);
	/* Cut in the middle of the fifth record. */
	uint64_t cut = end[4] + (end[5] - end[4]) / 2;
	tu_write_file(log, full, cut);

	struct tu_snap model;
	model_after(4, &model);
	dskvs *s = tu_open(tu_dir);
	assert_store_is(s, &model);
	tu_put_str(s, "z/new", "after the cut");
	tu_put_str(s, "a/k1", "replaced");
	tu_snap_add(&model, "z/new", "after the cut", 13);
	tu_snap_add(&model, "a/k1", "replaced", 8);
	tu_snap_sort(&model);
	tu_close(s);
	s = tu_open(tu_dir);
	assert_store_is(s, &model);
	tu_close(s);
	cr_assert_eq(dskvs_verify(tu_dir, NULL, NULL, NULL), DSKVS_OK);
	tu_snap_free(&model);
	free(log);
	free(full);
}

static int log_msgs;

static void count_log(void *arg, int level, const char *msg)
{
	(void)level;
	(void)msg;
	__atomic_add_fetch((int *)arg, 1, __ATOMIC_RELAXED);
}

Test(recovery, truncation_is_reported_through_log_fn)
{
	uint64_t end[NHIST + 1];
	size_t full_len;

	write_history(tu_dir, end);
	char *log = tu_log_path(tu_dir);
	char *full = tu_read_file(log, &full_len);
	tu_write_file(log, full, end[3] + 2);

	dskvs_options o;
	dskvs_options_init(&o);
	o.log_fn = count_log;
	o.log_arg = &log_msgs;
	dskvs *s = tu_open_opts(tu_dir, &o);
	cr_assert_geq(__atomic_load_n(&log_msgs, __ATOMIC_RELAXED), 1,
	              "torn tail truncated silently");
	tu_close(s);
	free(log);
	free(full);
}

/* ---- damage in the middle -------------------------------------------------
 */

/* Three records with known ends, then `more` records after them. */
static void write_damage_fixture(const char *dir, uint64_t end[4], int more)
{
	char *log = tu_log_path(dir);
	dskvs *s = tu_open(dir);
	char val[64], key[32];

	memset(val, 'x', sizeof(val));
	cr_assert_eq(dskvs_sync(s), DSKVS_OK);
	end[0] = TU_HEADER_SIZE;
	for (int i = 0; i < 3; i++) {
		snprintf(key, sizeof(key), "early/%d", i);
		tu_put(s, key, val, sizeof(val));
		cr_assert_eq(dskvs_sync(s), DSKVS_OK);
		end[i + 1] = tu_file_size(log);
	}
	for (int i = 0; i < more; i++) {
		snprintf(key, sizeof(key), "late/%d", i);
		tu_put(s, key, val, sizeof(val));
	}
	tu_close(s);
	free(log);
}

static void flip_byte(const char *path, uint64_t off)
{
	size_t len;
	unsigned char *data = tu_read_file(path, &len);

	cr_assert_lt(off, len);
	data[off] ^= 0x01;
	tu_write_file(path, data, len);
	free(data);
}

/* Opening must fail with `want`, give no handle and leave the file as it
 * was. */
static void assert_open_fails_unchanged_opts(const char *dir, int want,
                                             const dskvs_options *o)
{
	char *log = tu_log_path(dir);
	size_t n1, n2;
	void *before = tu_read_file(log, &n1);
	dskvs *s = (dskvs *)1;
	int rc = dskvs_open(dir, o, &s);

	cr_assert_eq(rc, want, "open = %s, want %s (%s)", dskvs_err_name(rc),
	             dskvs_err_name(want), dskvs_errmsg(NULL));
	cr_assert_null(s);
	void *after = tu_read_file(log, &n2);
	cr_assert_eq(n1, n2, "failed open changed the log size %zu -> %zu", n1,
	             n2);
	cr_assert_eq(memcmp(before, after, n1), 0,
	             "failed open changed the log");
	free(before);
	free(after);
	free(log);
}

static void assert_open_fails_unchanged(const char *dir, int want)
{
	assert_open_fails_unchanged_opts(dir, want, NULL);
}

Test(recovery, damage_before_valid_records_is_ecorrupt)
{
	uint64_t end[4];

	write_damage_fixture(tu_dir, end, 50);
	char *log = tu_log_path(tu_dir);
	/* Inside the second record's 64-byte value. */
	uint64_t off = end[2] - TU_MARK_SIZE - 32;
	flip_byte(log, off);
	assert_open_fails_unchanged(tu_dir, DSKVS_ECORRUPT);
	const char *msg = dskvs_errmsg(NULL);
	cr_assert_not_null(msg);
	cr_assert(strstr(msg, "offset") != NULL,
	          "errmsg does not mention an offset: \"%s\"", msg);
	cr_assert(strstr(msg, "dskvs.log") != NULL,
	          "errmsg does not name the file: \"%s\"", msg);
	free(log);
}

/* Pass 1 of a parallel replay finds the damage before any thread applies a
 * record: the open fails the same way and leaves the file alone. */
Test(recovery, damage_with_parallel_replay_is_ecorrupt)
{
	uint64_t end[4];
	dskvs_options o;

	dskvs_options_init(&o);
	o.recovery_threads = 4;
	write_damage_fixture(tu_dir, end, 50);
	char *log = tu_log_path(tu_dir);
	flip_byte(log, end[2] - TU_MARK_SIZE - 32);
	assert_open_fails_unchanged_opts(tu_dir, DSKVS_ECORRUPT, &o);
	free(log);
}

Test(recovery, corrupt_message_names_the_damaged_record_offset)
{
	uint64_t end[4];

	write_damage_fixture(tu_dir, end, 50);
	char *log = tu_log_path(tu_dir);
	flip_byte(log, end[2] - TU_MARK_SIZE - 32);
	dskvs *s = NULL;
	cr_assert_eq(dskvs_open(tu_dir, NULL, &s), DSKVS_ECORRUPT);
	char num[32];
	snprintf(num, sizeof(num), "%llu", (unsigned long long)end[1]);
	const char *msg = dskvs_errmsg(NULL);
	cr_assert(strstr(msg, num) != NULL,
	          "errmsg \"%s\" does not give the record's offset %s", msg,
	          num);
	free(log);
}

Test(recovery, damage_in_first_record_is_ecorrupt)
{
	uint64_t end[4];

	write_damage_fixture(tu_dir, end, 5);
	char *log = tu_log_path(tu_dir);
	flip_byte(log, end[1] - TU_MARK_SIZE - 32);
	assert_open_fails_unchanged(tu_dir, DSKVS_ECORRUPT);
	free(log);
}

Test(recovery, failed_open_releases_everything)
{
	uint64_t end[4];

	write_damage_fixture(tu_dir, end, 20);
	char *log = tu_log_path(tu_dir);
	flip_byte(log, end[2] - TU_MARK_SIZE - 32);
	for (int i = 0; i < 3; i++)
		assert_open_fails_unchanged(tu_dir, DSKVS_ECORRUPT);
	/* Repaired, it opens with every record: nothing was dropped and no
	 * lock was left behind. */
	flip_byte(log, end[2] - TU_MARK_SIZE - 32);
	dskvs *s = tu_open(tu_dir);
	dskvs_stats stats;
	cr_assert_eq(dskvs_stats_get(s, &stats), DSKVS_OK);
	cr_assert_eq(stats.entries, 23);
	tu_close(s);
	free(log);
}

/* A crash that lost the last batch's mark (it was written after the
 * fdatasync, and had not reached the disk) and damaged that batch: nothing
 * proves the batch was synced, so it is a torn tail, kept aside. */
Test(recovery, damaged_last_record_without_its_mark_is_a_torn_tail)
{
	uint64_t end[4];

	write_damage_fixture(tu_dir, end, 0);
	char *log = tu_log_path(tu_dir);
	size_t len;
	void *data = tu_read_file(log, &len);
	cr_assert_eq(len, end[3]);
	tu_write_file(log, data, end[3] - TU_MARK_SIZE);
	flip_byte(log, end[3] - TU_MARK_SIZE - 32);
	void *cut = tu_read_file(log, &len);
	dskvs *s = tu_open(tu_dir);
	tu_check_absent(s, "early/2");
	char val[64];
	memset(val, 'x', sizeof(val));
	tu_check(s, "early/0", val, sizeof(val));
	tu_check(s, "early/1", val, sizeof(val));
	cr_assert_eq(tu_file_size(log), end[2]);
	/* The cut bytes are kept, named by their offset. */
	char *kept =
	    tu_fmt("%s/dskvs.torn.%llu", tu_dir, (unsigned long long)end[2]);
	size_t klen;
	void *k = tu_read_file(kept, &klen);
	cr_assert_eq(klen, len - end[2]);
	cr_assert_eq(memcmp(k, (char *)cut + end[2], klen), 0);
	tu_close(s);
	free(k);
	free(kept);
	free(cut);
	free(data);
	free(log);
}

/* The same damage with the mark on disk (a clean close, or a crash after
 * the mark reached the disk): the batch was synced, so open refuses. */
Test(recovery, damaged_last_record_before_its_mark_is_ecorrupt)
{
	uint64_t end[4];

	write_damage_fixture(tu_dir, end, 0);
	char *log = tu_log_path(tu_dir);
	flip_byte(log, end[3] - TU_MARK_SIZE - 32);
	assert_open_fails_unchanged(tu_dir, DSKVS_ECORRUPT);
	cr_assert_eq(dskvs_verify(tu_dir, NULL, NULL, NULL), DSKVS_ECORRUPT);
	free(log);
}

/* ---- header ----------------------------------------------------------------
 */

Test(recovery, newer_major_version_is_eversion)
{
	uint64_t end[4];

	write_damage_fixture(tu_dir, end, 2);
	char *log = tu_log_path(tu_dir);
	size_t len;
	unsigned char *data = tu_read_file(log, &len);
	data[8] = 0xff;
	data[9] = 0xff;
	tu_write_file(log, data, len);
	free(data);
	assert_open_fails_unchanged(tu_dir, DSKVS_EVERSION);
	dskvs_verify_report rep;
	cr_assert_eq(dskvs_verify(tu_dir, NULL, NULL, &rep), DSKVS_EVERSION);
	free(log);
}

Test(recovery, header_records_the_format_version)
{
	dskvs *s = tu_open(tu_dir);
	dskvs_stats stats;

	tu_put_str(s, "a/b", "c");
	cr_assert_eq(dskvs_stats_get(s, &stats), DSKVS_OK);
	tu_close(s);
	char *log = tu_log_path(tu_dir);
	size_t len;
	unsigned char *d = tu_read_file(log, &len);
	cr_assert_geq(len, TU_HEADER_SIZE);
	cr_assert_eq(d[8] | d[9] << 8, stats.format_major);
	cr_assert_eq(d[10] | d[11] << 8, stats.format_minor);
	free(d);
	free(log);
}

Test(recovery, garbage_header_is_refused_without_crash)
{
	uint64_t end[4];
	char *log = tu_log_path(tu_dir);

	write_damage_fixture(tu_dir, end, 2);
	size_t len;
	unsigned char *orig = tu_read_file(log, &len);
	for (uint64_t seed = 1; seed <= 20; seed++) {
		unsigned char *d = malloc(len);
		cr_assert_not_null(d);
		memcpy(d, orig, len);
		tu_fill(d, TU_HEADER_SIZE, seed);
		tu_write_file(log, d, len);
		free(d);
		dskvs *s = (dskvs *)1;
		int rc = dskvs_open(tu_dir, NULL, &s);
		cr_assert(rc == DSKVS_ECORRUPT || rc == DSKVS_EVERSION,
		          "seed %llu: open = %d (%s)", (unsigned long long)seed,
		          rc, dskvs_err_name(rc));
		cr_assert_null(s);
		rc = dskvs_verify(tu_dir, NULL, NULL, NULL);
		cr_assert(rc == DSKVS_ECORRUPT || rc == DSKVS_EVERSION,
		          "seed %llu: verify = %d (%s)",
		          (unsigned long long)seed, rc, dskvs_err_name(rc));
	}
	free(orig);
	free(log);
}

Test(recovery, random_file_is_refused_without_crash)
{
	char *log = tu_log_path(tu_dir);
	unsigned char d[4096];

	for (uint64_t seed = 100; seed < 110; seed++) {
		tu_fill(d, sizeof(d), seed);
		tu_write_file(log, d, sizeof(d));
		dskvs *s = (dskvs *)1;
		int rc = dskvs_open(tu_dir, NULL, &s);
		cr_assert(rc == DSKVS_ECORRUPT || rc == DSKVS_EVERSION,
		          "seed %llu: open = %d (%s)", (unsigned long long)seed,
		          rc, dskvs_err_name(rc));
		cr_assert_null(s);
	}
	free(log);
}

Test(recovery, flipped_magic_is_refused)
{
	uint64_t end[4];

	write_damage_fixture(tu_dir, end, 2);
	char *log = tu_log_path(tu_dir);
	flip_byte(log, 0);
	uint64_t n = tu_file_size(log);
	dskvs *s = (dskvs *)1;
	int rc = dskvs_open(tu_dir, NULL, &s);
	cr_assert(rc == DSKVS_ECORRUPT || rc == DSKVS_EVERSION,
	          "open = %d (%s)", rc, dskvs_err_name(rc));
	cr_assert_null(s);
	cr_assert_eq(tu_file_size(log), n, "refused log was changed");
	free(log);
}

/* ---- verify on damaged copies -------------------------------------------- */

struct damage {
	int calls;
	uint64_t first_offset;
	char file[256];
};

static void on_damage(const char *file, uint64_t offset, const char *what,
                      void *arg)
{
	struct damage *d = arg;

	(void)what;
	if (d->calls++ == 0) {
		d->first_offset = offset;
		snprintf(d->file, sizeof(d->file), "%s", file ? file : "");
	}
}

Test(recovery, verify_reports_mid_file_damage)
{
	uint64_t end[4];

	write_damage_fixture(tu_dir, end, 30);
	char *log = tu_log_path(tu_dir);
	/* Damage a copy, like an operator would check a backup. */
	char *copy = tu_subdir("copy");
	char *log2 = tu_log_path(copy);
	size_t len;
	void *data = tu_read_file(log, &len);
	tu_write_file(log2, data, len);
	flip_byte(log2, end[2] - TU_MARK_SIZE - 32);

	cr_assert_eq(dskvs_verify(tu_dir, NULL, NULL, NULL), DSKVS_OK,
	             "the healthy original");
	struct damage d = { 0 };
	dskvs_verify_report rep;
	cr_assert_eq(dskvs_verify(copy, on_damage, &d, &rep), DSKVS_ECORRUPT);
	cr_assert_geq(d.calls, 1);
	cr_assert(strstr(d.file, "dskvs.log") != NULL, "file \"%s\"", d.file);
	cr_assert(d.first_offset >= end[1] && d.first_offset < end[2],
	          "damage reported at %llu, record spans %llu..%llu",
	          (unsigned long long)d.first_offset,
	          (unsigned long long)end[1], (unsigned long long)end[2]);
	cr_assert_geq(rep.damaged, 1);
	cr_assert_eq(rep.file_bytes, len);
	cr_assert_eq(rep.torn_tail, 0);
	/* verify changed nothing. */
	size_t len2;
	void *after = tu_read_file(log2, &len2);
	cr_assert_eq(len2, len);
	free(after);
	free(data);
	free(copy);
	free(log2);
	free(log);
}

/* The history with its log cut 3 bytes into the sixth record: a torn tail
 * after five whole operations. Returns the cut length; *log is the log's
 * path (to free). */
static uint64_t write_torn_history(uint64_t end[NHIST + 1], char **log)
{
	size_t len;

	write_history(tu_dir, end);
	*log = tu_log_path(tu_dir);
	void *data = tu_read_file(*log, &len);
	uint64_t cut = end[5] + 3;
	tu_write_file(*log, data, cut);
	free(data);
	return cut;
}

Test(recovery, verify_reports_torn_tail_as_healthy)
{
	uint64_t end[NHIST + 1];
	char *log;
	uint64_t cut = write_torn_history(end, &log);

	struct damage d = { 0 };
	dskvs_verify_report rep;
	cr_assert_eq(dskvs_verify(tu_dir, on_damage, &d, &rep), DSKVS_OK);
	cr_assert_eq(rep.torn_tail, 1);
	cr_assert_geq(d.calls, 1, "torn tail not reported through fn");
	cr_assert_eq(rep.file_bytes, cut);
	cr_assert_eq(rep.valid_bytes, end[5]);
	cr_assert_geq(rep.records, 5);
	cr_assert_eq(rep.puts, 4);
	cr_assert_eq(rep.deletes, 1);
	cr_assert_eq(rep.delete_alls, 0);
	/* verify does not truncate: that is open's job. */
	cr_assert_eq(tu_file_size(log), cut);
	free(log);
}

/* An open that ran while verify had the log mapped would truncate the torn
 * tail under the map (SIGBUS in verify). verify keeps the store's lock
 * shared while it has the file mapped, so the open is refused meanwhile,
 * and works again once verify returned. */
static void open_during_verify(const char *file, uint64_t off, const char *what,
                               void *arg)
{
	(void)file;
	(void)off;
	(void)what;
	dskvs *s = NULL;
	*(int *)arg = dskvs_open(tu_dir, NULL, &s);
	if (s != NULL)
		dskvs_close(s);
}

Test(recovery, open_during_verify_is_ebusy_and_leaves_the_log_alone)
{
	uint64_t end[NHIST + 1];
	char *log;
	uint64_t cut = write_torn_history(end, &log);

	int rc = -1;
	cr_assert_eq(dskvs_verify(tu_dir, open_during_verify, &rc, NULL),
	             DSKVS_OK);
	cr_assert_eq(rc, DSKVS_EBUSY, "open during verify gave %s",
	             dskvs_err_name(rc));
	cr_assert_eq(tu_file_size(log), cut);
	/* The lock is released: the open now truncates the torn tail. */
	dskvs *s = tu_open(tu_dir);
	cr_assert_eq(tu_file_size(log), end[5]);
	/* And verify of the open store works on a copy of the log. */
	struct damage d = { 0 };
	dskvs_verify_report rep;
	cr_assert_eq(dskvs_verify(tu_dir, on_damage, &d, &rep), DSKVS_OK);
	cr_assert_eq(rep.valid_bytes, end[5]);
	cr_assert_eq(rep.torn_tail, 0);
	tu_close(s);
	free(log);
}

Test(recovery, verify_of_missing_directory_is_epath)
{
	char *p = tu_fmt("%s/missing", tu_dir);

	cr_assert_eq(dskvs_verify(p, NULL, NULL, NULL), DSKVS_EPATH);
	struct stat sb;
	cr_assert_neq(stat(p, &sb), 0, "verify created the directory");
	free(p);
}
