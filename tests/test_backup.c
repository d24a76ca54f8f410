/*
 * Hot backup: dskvs_backup and dskvs_backup_path. White-box (linked
 * against dskvs_internal) only to watch the syncs of the copy through the
 * I/O seam; everything else goes through the public API.
 *
 * The cut check: each writer thread w writes keys "w<w>/<n>" for n = 0, 1,
 * ... in order, and each value carries how many writes every writer had
 * finished when the write began. In a consistent cut, every writer's keys
 * form a prefix 0 .. m_w - 1, and a write present in the cut implies that
 * every write that had returned before it began is present too: m_v >=
 * value[v] for every v. Every write that returned before dskvs_backup was
 * called must be in it: m_w >= done_w sampled before the call.
 */
#include "testutil.h"

#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

TestSuite(backup, .init = tu_setup, .fini = tu_teardown, .timeout = 120);

#define WRITERS 4

struct cut_run {
	dskvs *s;
	int stop;
	uint64_t done[WRITERS]; /* writes returned, per writer (atomic) */
	int err;
};

struct writer_arg {
	struct cut_run *run;
	int w;
};

static void *writer_main(void *p)
{
	struct writer_arg *a = p;
	struct cut_run *run = a->run;
	char key[64];
	uint64_t val[WRITERS];
	for (uint64_t n = 0; !__atomic_load_n(&run->stop, __ATOMIC_ACQUIRE);
	     n++) {
		for (int v = 0; v < WRITERS; v++)
			val[v] =
			    __atomic_load_n(&run->done[v], __ATOMIC_ACQUIRE);
		snprintf(key, sizeof(key), "w%d/%llu", a->w,
		         (unsigned long long)n);
		int rc = dskvs_put(run->s, key, val, sizeof(val), NULL, NULL);
		if (rc != DSKVS_OK) {
			__atomic_store_n(&run->err, rc, __ATOMIC_RELAXED);
			break;
		}
		__atomic_store_n(&run->done[a->w], n + 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

struct coll_scan {
	uint64_t count, max;
	int w;
	uint64_t (*vals)[WRITERS]; /* per member index, grown */
	size_t cap;
	int bad;
};

static int scan_member(const char *member, size_t mlen, const void *val,
                       size_t vlen, void *arg)
{
	struct coll_scan *c = arg;
	(void)mlen;
	char *end;
	unsigned long long n = strtoull(member, &end, 10);
	if (*end != '\0' || vlen != sizeof(uint64_t) * WRITERS) {
		c->bad = 1;
		return 0;
	}
	if (n >= c->cap) {
		size_t cap = (n + 1) * 2;
		void *p = realloc(c->vals, cap * sizeof(*c->vals));
		if (p == NULL) {
			c->bad = 1;
			return 1;
		}
		memset((char *)p + c->cap * sizeof(*c->vals), 0,
		       (cap - c->cap) * sizeof(*c->vals));
		c->vals = p;
		c->cap = cap;
	}
	memcpy(c->vals[n], val, vlen);
	c->count++;
	if (n + 1 > c->max)
		c->max = n + 1;
	return 0;
}

/* Open the backup at dir and check the cut property against `before`
 * (writes returned before the backup was called). */
static void check_cut(const char *dir, const uint64_t before[WRITERS])
{
	struct coll_scan c[WRITERS];
	dskvs *b = tu_open(dir);
	memset(c, 0, sizeof(c));
	for (int w = 0; w < WRITERS; w++) {
		char coll[16];
		snprintf(coll, sizeof(coll), "w%d", w);
		cr_assert_eq(dskvs_get_all(b, coll, scan_member, &c[w]), 0);
		cr_assert_eq(c[w].bad, 0);
		/* A prefix of this writer's writes. */
		cr_assert_eq(c[w].count, c[w].max,
		             "writer %d: %llu keys but the highest is %llu", w,
		             (unsigned long long)c[w].count,
		             (unsigned long long)c[w].max);
		cr_assert_geq(c[w].count, before[w],
		              "writer %d: a write that returned before the "
		              "backup is missing",
		              w);
	}
	for (int w = 0; w < WRITERS; w++)
		for (uint64_t n = 0; n < c[w].count; n++)
			for (int v = 0; v < WRITERS; v++)
				cr_assert_geq(
				    c[v].count, c[w].vals[n][v],
				    "w%d/%llu is in the backup but a "
				    "write of writer %d that returned "
				    "before it began is not",
				    w, (unsigned long long)n, v);
	for (int w = 0; w < WRITERS; w++)
		free(c[w].vals);
	tu_close(b);
	cr_assert_eq(dskvs_verify(dir, NULL, NULL, NULL), DSKVS_OK);
}

struct compactor {
	dskvs *s;
	int stop;
	int runs, err;
};

static void *compactor_main(void *p)
{
	struct compactor *c = p;
	while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
		int rc = dskvs_compact(c->s);
		if (rc != DSKVS_OK) {
			c->err = rc;
			break;
		}
		c->runs++;
		usleep(2000);
	}
	return NULL;
}

static void run_cut_test(bool with_compaction)
{
	struct cut_run run = { 0 };
	struct writer_arg args[WRITERS];
	pthread_t th[WRITERS], ct;
	struct compactor comp = { 0 };
	char *store = tu_subdir("store");

	run.s = tu_open(store);
	for (int w = 0; w < WRITERS; w++) {
		args[w] = (struct writer_arg){ &run, w };
		cr_assert_eq(
		    pthread_create(&th[w], NULL, writer_main, &args[w]), 0);
	}
	if (with_compaction) {
		comp.s = run.s;
		cr_assert_eq(pthread_create(&ct, NULL, compactor_main, &comp),
		             0);
	}
	uint64_t before[5][WRITERS];
	char *dest[5];
	for (int i = 0; i < 5; i++) {
		usleep(20000);
		for (int w = 0; w < WRITERS; w++)
			before[i][w] =
			    __atomic_load_n(&run.done[w], __ATOMIC_ACQUIRE);
		dest[i] = tu_fmt("%s/backup%d", tu_dir, i);
		cr_assert_eq(dskvs_backup(run.s, dest[i]), DSKVS_OK, "%s",
		             dskvs_errmsg(NULL));
	}
	__atomic_store_n(&run.stop, 1, __ATOMIC_RELEASE);
	for (int w = 0; w < WRITERS; w++)
		pthread_join(th[w], NULL);
	if (with_compaction) {
		__atomic_store_n(&comp.stop, 1, __ATOMIC_RELEASE);
		pthread_join(ct, NULL);
		cr_assert_eq(comp.err, 0);
		cr_assert_gt(comp.runs, 0);
	}
	cr_assert_eq(run.err, 0);
	tu_close(run.s);
	for (int i = 0; i < 5; i++) {
		check_cut(dest[i], before[i]);
		free(dest[i]);
	}
	free(store);
}

Test(backup, consistent_cut_with_writers)
{
	run_cut_test(false);
}

Test(backup, consistent_cut_across_compaction)
{
	run_cut_test(true);
}

Test(backup, empty_store)
{
	char *store = tu_subdir("store");
	char *dest = tu_fmt("%s/copy", tu_dir);
	dskvs *s = tu_open(store);
	cr_assert_eq(dskvs_backup(s, dest), DSKVS_OK, "%s", dskvs_errmsg(NULL));
	tu_close(s);
	dskvs_stats st;
	dskvs *b = tu_open(dest);
	cr_assert_eq(dskvs_stats_get(b, &st), 0);
	cr_assert_eq(st.entries, 0);
	tu_close(b);
	cr_assert_eq(dskvs_verify(dest, NULL, NULL, NULL), DSKVS_OK);
	free(store);
	free(dest);
}

Test(backup, many_collections_and_an_empty_dir_as_dest)
{
	char *store = tu_subdir("store");
	char *dest = tu_subdir("copy"); /* exists, empty */
	dskvs *s = tu_open(store);
	struct tu_snap want = { 0 }, got = { 0 };
	char key[64], val[64];
	for (int c = 0; c < 200; c++)
		for (int m = 0; m < 20; m++) {
			snprintf(key, sizeof(key), "c%d/m%d", c, m);
			snprintf(val, sizeof(val), "v%d.%d", c, m);
			tu_put_str(s, key, val);
		}
	for (int c = 0; c < 200; c += 7) {
		snprintf(key, sizeof(key), "c%d", c);
		cr_assert_eq(dskvs_delete_all(s, key), 0);
	}
	for (int c = 1; c < 200; c += 5) {
		snprintf(key, sizeof(key), "c%d/m3", c);
		(void)dskvs_delete(s, key);
	}
	tu_snap_take(s, &want);
	cr_assert_eq(dskvs_backup(s, dest), DSKVS_OK, "%s", dskvs_errmsg(NULL));
	tu_put_str(s, "after/x", "not in the backup");
	tu_close(s);
	cr_assert_eq(dskvs_verify(dest, NULL, NULL, NULL), DSKVS_OK);
	dskvs *b = tu_open(dest);
	tu_snap_take(b, &got);
	tu_snap_assert_eq(&want, &got);
	/* The backup is a store like any other. */
	tu_put_str(b, "new/x", "y");
	tu_close(b);
	b = tu_open(dest);
	tu_check_str(b, "new/x", "y");
	tu_check_str(b, "c1/m0", "v1.0");
	tu_close(b);
	tu_snap_free(&want);
	tu_snap_free(&got);
	free(store);
	free(dest);
}

static bool exists(const char *p)
{
	struct stat st;
	return lstat(p, &st) == 0;
}

Test(backup, bad_destinations)
{
	char *store = tu_subdir("store");
	dskvs *s = tu_open(store);
	tu_put_str(s, "a/b", "c");

	cr_assert_eq(dskvs_backup(NULL, "x"), DSKVS_EINVAL);
	cr_assert_eq(dskvs_backup(s, NULL), DSKVS_EINVAL);
	cr_assert_eq(dskvs_backup(s, ""), DSKVS_EINVAL);

	/* A file. */
	char *file = tu_fmt("%s/file", tu_dir);
	tu_write_file(file, "x", 1);
	cr_assert_eq(dskvs_backup(s, file), DSKVS_EEXIST);
	cr_assert_eq(tu_file_size(file), 1);

	/* A directory that is not empty. */
	char *full = tu_subdir("full");
	char *inside = tu_fmt("%s/keep", full);
	tu_write_file(inside, "k", 1);
	cr_assert_eq(dskvs_backup(s, full), DSKVS_EEXIST);
	cr_assert_eq(tu_file_size(inside), 1);

	/* The store itself, and inside it (also through "..") */
	cr_assert_eq(dskvs_backup(s, store), DSKVS_EINVAL);
	char *in = tu_fmt("%s/sub", store);
	cr_assert_eq(dskvs_backup(s, in), DSKVS_EINVAL);
	cr_assert(!exists(in));
	char *dotdot = tu_fmt("%s/../store/sub2", store);
	cr_assert_eq(dskvs_backup(s, dotdot), DSKVS_EINVAL);

	/* A missing parent; a file on the way. */
	char *orphan = tu_fmt("%s/no/such/dir", tu_dir);
	cr_assert_eq(dskvs_backup(s, orphan), DSKVS_EPATH);
	char *through = tu_fmt("%s/sub", file);
	cr_assert_eq(dskvs_backup(s, through), DSKVS_EPATH);

	/* Unwritable (root ignores permissions). */
	if (geteuid() != 0) {
		char *ro = tu_subdir("ro");
		cr_assert_eq(chmod(ro, 0500), 0);
		char *under = tu_fmt("%s/copy", ro);
		cr_assert_eq(dskvs_backup(s, under), DSKVS_EPATH);
		char *ro2 = tu_subdir("ro2"); /* empty but read-only */
		cr_assert_eq(chmod(ro2, 0500), 0);
		cr_assert_eq(dskvs_backup(s, ro2), DSKVS_EPATH);
		chmod(ro, 0700);
		chmod(ro2, 0700);
		free(ro);
		free(ro2);
		free(under);
	}

	/* Refusals left the store as it was. */
	char *ok = tu_fmt("%s/ok", tu_dir);
	cr_assert_eq(dskvs_backup(s, ok), DSKVS_OK, "%s", dskvs_errmsg(NULL));
	tu_close(s);
	dskvs *b = tu_open(ok);
	tu_check_str(b, "a/b", "c");
	tu_close(b);
	free(ok);
	free(file);
	free(full);
	free(inside);
	free(in);
	free(dotdot);
	free(orphan);
	free(through);
	free(store);
}

/* ---- the syncs of the copy, through the I/O seam ------------------------ */

#define MAX_EVENTS 4096
static pthread_mutex_t ev_mu = PTHREAD_MUTEX_INITIALIZER;
static struct event {
	char kind; /* 'd' fdatasync, 's' fsync, 'r' rename */
	ino_t ino;
} events[MAX_EVENTS];
static int n_events;
static const char *fail_under; /* fail fdatasync of files under this */

static void note(char kind, int fd)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return;
	ino_t ino = st.st_ino;
	pthread_mutex_lock(&ev_mu);
	if (n_events < MAX_EVENTS) {
		events[n_events].kind = kind;
		events[n_events].ino = ino;
		n_events++;
	}
	pthread_mutex_unlock(&ev_mu);
}

static bool fd_under(int fd, const char *dir)
{
	char link[64], target[PATH_MAX];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = '\0';
	return strncmp(target, dir, strlen(dir)) == 0;
}

static int watch_fdatasync(int fd)
{
	if (fail_under && fd_under(fd, fail_under)) {
		errno = EIO;
		return -1;
	}
	note('d', fd);
	return dskvs__io_libc.fdatasync(fd);
}

static int watch_fsync(int fd)
{
	note('s', fd);
	return dskvs__io_libc.fsync(fd);
}

static int watch_renameat(int od, const char *on, int nd, const char *nn)
{
	int rc = dskvs__io_libc.renameat(od, on, nd, nn);
	if (rc == 0)
		note('r', nd);
	return rc;
}

static int find_event(char kind, ino_t ino, int from)
{
	for (int i = from; i < n_events; i++)
		if (events[i].kind == kind && events[i].ino == ino)
			return i;
	return -1;
}

Test(backup, copy_is_synced_before_return)
{
	char *store = tu_subdir("store");
	char *parent = tu_subdir("parent");
	char *dest = tu_fmt("%s/copy", parent);
	dskvs *s = tu_open(store);
	tu_put_str(s, "a/b", "c");
	cr_assert_eq(dskvs_sync(s), 0);

	n_events = 0;
	dskvs__io.fdatasync = watch_fdatasync;
	dskvs__io.fsync = watch_fsync;
	dskvs__io.renameat = watch_renameat;
	int rc = dskvs_backup(s, dest);
	dskvs__io = dskvs__io_libc;
	cr_assert_eq(rc, DSKVS_OK, "%s", dskvs_errmsg(NULL));

	struct stat log, dir, par;
	char *log_path = tu_log_path(dest);
	cr_assert_eq(stat(log_path, &log), 0);
	cr_assert_eq(stat(dest, &dir), 0);
	cr_assert_eq(stat(parent, &par), 0);
	/* The log's data, then the rename, then the directory, then the
	 * parent of the directory the backup created. */
	int d = find_event('d', log.st_ino, 0);
	cr_assert_geq(d, 0, "the copy was never fdatasync'ed");
	int r = find_event('r', dir.st_ino, d);
	cr_assert_geq(r, 0, "no rename after the fdatasync");
	int ds = find_event('s', dir.st_ino, r);
	cr_assert_geq(ds, 0,
	              "the directory was not fsync'ed after the "
	              "rename");
	cr_assert_geq(find_event('s', par.st_ino, 0), 0,
	              "the parent of the new directory was not fsync'ed");
	tu_close(s);
	free(log_path);
	free(store);
	free(parent);
	free(dest);
}

Test(backup, failed_sync_leaves_nothing)
{
	char *store = tu_subdir("store");
	char *dest = tu_fmt("%s/copy", tu_dir);
	dskvs *s = tu_open(store);
	tu_put_str(s, "a/b", "c");
	fail_under = dest;
	dskvs__io.fdatasync = watch_fdatasync;
	int rc = dskvs_backup(s, dest);
	dskvs__io = dskvs__io_libc;
	fail_under = NULL;
	cr_assert_eq(rc, DSKVS_EIO);
	cr_assert(!exists(dest), "a failed backup left its directory");
	/* The store is not hurt: writes and a later backup work. */
	tu_put_str(s, "a/c", "d");
	cr_assert_eq(dskvs_backup(s, dest), DSKVS_OK, "%s", dskvs_errmsg(NULL));
	tu_close(s);
	free(store);
	free(dest);
}

/* ---- dskvs_backup_path ----------------------------------------------------
 */

Test(backup, path_of_a_closed_store)
{
	char *store = tu_subdir("store");
	char *dest = tu_fmt("%s/copy", tu_dir);
	dskvs *s = tu_open(store);
	for (int i = 0; i < 100; i++) {
		char key[32];
		snprintf(key, sizeof(key), "k/%d", i);
		tu_put_str(s, key, "v");
	}
	tu_close(s);
	dskvs_backup_report rep;
	cr_assert_eq(dskvs_backup_path(store, dest, &rep), DSKVS_OK, "%s",
	             dskvs_errmsg(NULL));
	cr_assert_eq(rep.open_elsewhere, 0);
	cr_assert_eq(rep.records, 100);
	cr_assert_eq(rep.bytes, rep.file_bytes); /* closed: all proven */
	cr_assert_eq(rep.seq, 100);
	dskvs *b = tu_open(dest);
	tu_check_str(b, "k/99", "v");
	tu_close(b);
	free(store);
	free(dest);
}

Test(backup, path_of_an_open_store)
{
	char *store = tu_subdir("store");
	char *dest = tu_fmt("%s/copy", tu_dir);
	char *dest2 = tu_fmt("%s/copy2", tu_dir);
	dskvs *s = tu_open(store);
	tu_put_str(s, "a/1", "x");
	cr_assert_eq(dskvs_sync(s), 0);
	uint64_t durable = dskvs_durable_seq(s);
	dskvs_backup_report rep;
	cr_assert_eq(dskvs_backup_path(store, dest, &rep), DSKVS_OK, "%s",
	             dskvs_errmsg(NULL));
	cr_assert_eq(rep.open_elsewhere, 1);
	cr_assert_geq(rep.seq, durable);
	cr_assert_eq(dskvs_backup_path(store, store, NULL), DSKVS_EINVAL);
	cr_assert_eq(dskvs_backup_path(NULL, dest2, NULL), DSKVS_EINVAL);
	cr_assert_eq(dskvs_backup_path(dest2, dest, NULL), DSKVS_EPATH);
	cr_assert_eq(dskvs_backup_path(store, dest, NULL), DSKVS_EEXIST);
	tu_close(s);
	dskvs *b = tu_open(dest);
	tu_check_str(b, "a/1", "x");
	tu_close(b);
	free(store);
	free(dest);
	free(dest2);
}
