/*
 * Data-loss holes, white-box, one case per forked child (a failing case
 * does not stop the others; every case's failures are printed):
 *
 *  - rewrite_fails_*: dskvs_rewrite while 100 writes are queued behind a
 *    slow fdatasync of the log, and the fdatasync of dskvs.log.tmp fails
 *    (EIO; ENOSPC; after a failed dskvs_compact). The rewrite says
 *    DSKVS_EIO. Afterwards the store either stays sticky (a later put,
 *    dskvs_sync or dskvs_close says DSKVS_EIO), or it keeps working, and
 *    then once dskvs_sync and dskvs_close said DSKVS_OK, every write it
 *    accepted is there after reopening: nothing queued while the rewrite
 *    ran may be dropped.
 *  - pread_eio_*: a media error reading the log (dskvs__io.pread fails with
 *    EIO over offset 4096): dskvs_open and dskvs_verify say DSKVS_EIO,
 *    naming dskvs.log.
 *  - v1_*: logs of format 1.0 built by v1log.c from the format comment of
 *    src/log.c: a plain one opens with exactly its state; one whose last
 *    record's sequence number is 2^64 - 2 (checksums valid) and one whose
 *    sequence numbers go backwards are DSKVS_ECORRUPT.
 *  - crafted_quadratic: a 256 KiB log of back-to-back plausible record
 *    headers opens (DSKVS_OK or DSKVS_ECORRUPT) and verifies without
 *    crashing. Its time is printed, not checked.
 */
#include "dt.h"
#include "internal.h"
#include "v1log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- soft checks: print every failure of a case, fail it at the end ---- */

static unsigned soft_failures;

#define SOFT(cond, ...)                                                        \
	do {                                                                   \
		if (!(cond)) {                                                 \
			soft_failures++;                                       \
			fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, \
			        __LINE__, #cond);                              \
			fprintf(stderr, __VA_ARGS__);                          \
			fputc('\n', stderr);                                   \
		}                                                              \
	} while (0)

#define SOFT_RC(expr, want)                                                    \
	do {                                                                   \
		int soft_rc_ = (expr);                                         \
		SOFT(soft_rc_ == (want), "%s returned %s, not %s (%s)", #expr, \
		     dskvs_err_name(soft_rc_), dskvs_err_name(want),           \
		     dskvs_errmsg(NULL));                                      \
	} while (0)

static void soft_done(void)
{
	dskvs__io = dskvs__io_libc;
	if (soft_failures) {
		fflush(NULL);
		_exit(DT_FAIL_EXIT);
	}
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static dskvs *open_ok(const char *dir, const dskvs_options *o)
{
	dskvs *s = NULL;
	DT_RC(dskvs_open(dir, o, &s), DSKVS_OK);
	return s;
}

/* True when key holds exactly val. */
static bool holds(dskvs *s, const char *key, const char *val)
{
	void *got = NULL;
	size_t len = 0;
	if (dskvs_get_alloc(s, key, &got, &len) != DSKVS_OK)
		return false;
	bool same = len == strlen(val) && memcmp(got, val, len) == 0;
	free(got);
	return same;
}

static bool absent(dskvs *s, const char *key)
{
	size_t len;
	return dskvs_get(s, key, NULL, 0, &len) == DSKVS_NOTFOUND;
}

/* ---- failed rewrite ---------------------------------------------------------
 *
 * The seam: the log's descriptor and the temporary file's are learnt from
 * openat by name. When `block` is armed, the next fdatasync of the log
 * waits (before syncing) until a compaction or rewrite has been requested,
 * so the writes made meanwhile are still queued when it starts. Every
 * fdatasync of the temporary file fails with tmp_errno.
 */
static struct {
	pthread_mutex_t mu;
	int log_fd, tmp_fd;
	bool block, held;
	int tmp_errno;
	unsigned tmp_failed;
	dskvs *s;
} rw = { .mu = PTHREAD_MUTEX_INITIALIZER, .log_fd = -1, .tmp_fd = -1 };

static int rw_openat(int dirfd, const char *name, int flags, mode_t mode)
{
	int fd = dskvs__io_libc.openat(dirfd, name, flags, mode);
	if (fd >= 0) {
		pthread_mutex_lock(&rw.mu);
		if (strcmp(name, DSKVS_LOG_NAME) == 0)
			rw.log_fd = fd;
		else if (strcmp(name, DSKVS_LOG_TMP) == 0)
			rw.tmp_fd = fd;
		pthread_mutex_unlock(&rw.mu);
	}
	return fd;
}

static int rw_close(int fd)
{
	pthread_mutex_lock(&rw.mu);
	if (fd == rw.tmp_fd)
		rw.tmp_fd = -1;
	if (fd == rw.log_fd)
		rw.log_fd = -1;
	pthread_mutex_unlock(&rw.mu);
	return dskvs__io_libc.close(fd);
}

static int rw_renameat(int od, const char *on, int nd, const char *nn)
{
	int rc = dskvs__io_libc.renameat(od, on, nd, nn);
	pthread_mutex_lock(&rw.mu);
	if (rc == 0 && strcmp(on, DSKVS_LOG_TMP) == 0) {
		/* Not expected here (its fdatasync failed); keep track. */
		rw.log_fd = rw.tmp_fd;
		rw.tmp_fd = -1;
	}
	pthread_mutex_unlock(&rw.mu);
	return rc;
}

static int rw_fdatasync(int fd)
{
	pthread_mutex_lock(&rw.mu);
	bool tmp = fd == rw.tmp_fd && rw.tmp_errno;
	bool wait = fd == rw.log_fd && rw.block;
	if (wait) {
		rw.block = false;
		rw.held = true;
	}
	if (tmp)
		rw.tmp_failed++;
	int e = rw.tmp_errno;
	dskvs *s = rw.s;
	pthread_mutex_unlock(&rw.mu);
	if (tmp) {
		errno = e;
		return -1;
	}
	if (wait) {
		/* Until dskvs_compact/dskvs_rewrite has registered its
		 * request (at most 5 s: then the test is broken). */
		double t0 = now_s();
		while (!__atomic_load_n(&s->j.compact_req, __ATOMIC_ACQUIRE)) {
			DT_CHECK(now_s() - t0 < 5.0,
			         "no compaction was requested while the log's "
			         "fdatasync was held up");
			usleep(1000);
		}
	}
	return dskvs__io_libc.fdatasync(fd);
}

static void rw_install(dskvs *s, int tmp_errno)
{
	dskvs__io = dskvs__io_libc;
	rw.log_fd = rw.tmp_fd = -1;
	rw.block = rw.held = false;
	rw.tmp_errno = tmp_errno;
	rw.tmp_failed = 0;
	rw.s = s;
	dskvs__io.openat = rw_openat;
	dskvs__io.close = rw_close;
	dskvs__io.renameat = rw_renameat;
	dskvs__io.fdatasync = rw_fdatasync;
}

static void rw_arm(void)
{
	pthread_mutex_lock(&rw.mu);
	rw.block = true;
	rw.held = false;
	pthread_mutex_unlock(&rw.mu);
}

/* Wait until the janitor is inside the held-up fdatasync of the log. */
static void rw_wait_held(void)
{
	double t0 = now_s();
	for (;;) {
		pthread_mutex_lock(&rw.mu);
		bool held = rw.held;
		pthread_mutex_unlock(&rw.mu);
		if (held)
			return;
		DT_CHECK(now_s() - t0 < 5.0,
		         "the janitor never reached the log's fdatasync");
		usleep(200);
	}
}

#define NY           100
#define MAX_ACCEPTED (2 * NY + 8)

struct accepted {
	char key[MAX_ACCEPTED][16];
	char val[MAX_ACCEPTED][48];
	size_t n;
	bool refused; /* some write said DSKVS_EIO */
};

static void try_put(dskvs *s, struct accepted *a, const char *key)
{
	char val[48];
	snprintf(val, sizeof(val), "value of %s, queued during a rewrite", key);
	int rc = dskvs_put(s, key, val, strlen(val), NULL, NULL);
	DT_CHECK(rc == DSKVS_OK || rc == DSKVS_EIO, "put(%s) = %s (%s)", key,
	         dskvs_err_name(rc), dskvs_errmsg(NULL));
	if (rc != DSKVS_OK) {
		a->refused = true;
		return;
	}
	DT_CHECK(a->n < MAX_ACCEPTED, "too many writes");
	snprintf(a->key[a->n], sizeof(a->key[0]), "%s", key);
	snprintf(a->val[a->n], sizeof(a->val[0]), "%s", val);
	a->n++;
}

/* x/<x>, then y/<lo>..y/<hi - 1> while the log's fdatasync of x is held
 * up, then `kind` (1: dskvs_compact, 2: dskvs_rewrite), which must fail
 * with DSKVS_EIO. */
static void queued_then_fail(dskvs *s, struct accepted *a, int x, int lo,
                             int hi, int kind)
{
	char key[16];
	snprintf(key, sizeof(key), "x/%d", x);
	rw_arm();
	try_put(s, a, key);
	if (a->refused) {
		/* Sticky already: nothing reaches the log to hold up. */
		pthread_mutex_lock(&rw.mu);
		rw.block = false;
		pthread_mutex_unlock(&rw.mu);
	} else {
		/* The y records then queue behind x's batch. */
		rw_wait_held();
	}
	for (int i = lo; i < hi; i++) {
		snprintf(key, sizeof(key), "y/%d", i);
		try_put(s, a, key);
	}
	if (kind == 1)
		SOFT_RC(dskvs_compact(s), DSKVS_EIO);
	else
		SOFT_RC(dskvs_rewrite(s), DSKVS_EIO);
}

struct rw_case {
	const char *name;
	int tmp_errno;
	bool compact_first;
};

static void rewrite_case(void *arg)
{
	const struct rw_case *c = arg;
	char *dir = dt_mkdtemp("holes-rw");
	struct accepted *a = calloc(1, sizeof(*a));
	DT_CHECK(a != NULL, "out of memory");
	dskvs_options o;
	dskvs_options_init(&o);
	o.auto_compact = 0;

	/* A store that exists already, so that its log is opened by name. */
	dskvs *s = open_ok(dir, &o);
	DT_RC(dskvs_close(s), DSKVS_OK);
	rw_install(NULL, c->tmp_errno); /* learns the log's fd during open */
	s = open_ok(dir, &o);
	pthread_mutex_lock(&rw.mu);
	rw.s = s;
	pthread_mutex_unlock(&rw.mu);
	DT_CHECK(rw.log_fd >= 0, "the log was not opened by name");

	if (c->compact_first) {
		queued_then_fail(s, a, 0, 0, NY / 2, 1);
		queued_then_fail(s, a, 1, NY / 2, NY, 2);
	} else {
		queued_then_fail(s, a, 0, 0, NY, 2);
	}
	SOFT(rw.tmp_failed > 0, "no fdatasync of " DSKVS_LOG_TMP " failed");

	try_put(s, a, "z/0");
	int src = dskvs_sync(s);
	const char *smsg = dskvs_errmsg(s);
	char sdetail[256];
	snprintf(sdetail, sizeof(sdetail), "%s", smsg);
	int crc = dskvs_close(s);
	SOFT(src == DSKVS_OK || src == DSKVS_EIO, "dskvs_sync = %s (%s)",
	     dskvs_err_name(src), sdetail);
	SOFT(crc == DSKVS_OK || crc == DSKVS_EIO, "dskvs_close = %s",
	     dskvs_err_name(crc));
	bool acked = src == DSKVS_OK && crc == DSKVS_OK;
	SOFT(!(a->refused && acked),
	     "a write was refused with DSKVS_EIO, yet dskvs_sync and "
	     "dskvs_close said DSKVS_OK");
	dskvs__io = dskvs__io_libc;

	s = open_ok(dir, &o);
	if (acked) {
		size_t missing = 0;
		const char *first = NULL;
		for (size_t i = 0; i < a->n; i++)
			if (!holds(s, a->key[i], a->val[i])) {
				missing++;
				if (first == NULL)
					first = a->key[i];
			}
		SOFT(missing == 0,
		     "%s: dskvs_sync and dskvs_close said DSKVS_OK, but %zu "
		     "of the %zu accepted writes are missing after reopening "
		     "(the first: %s)",
		     c->name, missing, a->n, first ? first : "");
	} else {
		printf("  %s: the store went sticky (sync %s, close %s)\n",
		       c->name, dskvs_err_name(src), dskvs_err_name(crc));
		SOFT(a->n > 0 && holds(s, a->key[0], a->val[0]),
		     "x/0, synced before the rewrite, is missing");
	}
	DT_RC(dskvs_close(s), DSKVS_OK);
	dt_rmtree(dir);
	free(dir);
	free(a);
	soft_done();
}

/* ---- a media error while reading the log --------------------------------- */

static struct {
	dev_t dev;
	ino_t ino;
	off_t bad;
	unsigned hits;
} pr;

static ssize_t pr_pread(int fd, void *buf, size_t n, off_t off)
{
	struct stat st;
	if (n > 0 && fstat(fd, &st) == 0 && st.st_dev == pr.dev &&
	    st.st_ino == pr.ino && off <= pr.bad && pr.bad < off + (off_t)n) {
		__atomic_add_fetch(&pr.hits, 1, __ATOMIC_RELAXED);
		errno = EIO;
		return -1;
	}
	return dskvs__io_libc.pread(fd, buf, n, off);
}

static void pread_case(void *arg)
{
	(void)arg;
	char *dir = dt_mkdtemp("holes-pread");
	char *log = dt_fmt("%s/" DSKVS_LOG_NAME, dir);
	char key[32], val[1000];
	dskvs *s = open_ok(dir, NULL);
	memset(val, 'v', sizeof(val));
	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "k/%03d", i);
		DT_RC(dskvs_put(s, key, val, sizeof(val), NULL, NULL),
		      DSKVS_OK);
	}
	DT_RC(dskvs_close(s), DSKVS_OK);
	DT_CHECK(dt_file_size(log) > 90000, "log of %lld bytes",
	         dt_file_size(log));

	struct stat st;
	DT_CHECK(stat(log, &st) == 0, "stat: %s", strerror(errno));
	pr.dev = st.st_dev;
	pr.ino = st.st_ino;
	pr.bad = 4096;
	dskvs__io = dskvs__io_libc;
	dskvs__io.pread = pr_pread;

	s = NULL;
	int rc = dskvs_open(dir, NULL, &s);
	char msg[512];
	snprintf(msg, sizeof(msg), "%s", dskvs_errmsg(NULL));
	SOFT(rc == DSKVS_EIO,
	     "dskvs_open with a media error at offset 4096 "
	     "of the log = %s, not DSKVS_EIO (%s)",
	     dskvs_err_name(rc), msg);
	if (rc == DSKVS_EIO)
		SOFT(strstr(msg, DSKVS_LOG_NAME) != NULL,
		     "the message does not name " DSKVS_LOG_NAME ": \"%s\"",
		     msg);
	if (rc == DSKVS_OK)
		dskvs_close(s);

	rc = dskvs_verify(dir, NULL, NULL, NULL);
	SOFT(rc == DSKVS_EIO,
	     "dskvs_verify with a media error at offset "
	     "4096 of the log = %s, not DSKVS_EIO (%s)",
	     dskvs_err_name(rc), dskvs_errmsg(NULL));
	printf("  pread: %u failed reads injected\n", pr.hits);

	dskvs__io = dskvs__io_libc;
	dt_rmtree(dir);
	free(log);
	free(dir);
	soft_done();
}

/* ---- logs of format 1.0 ----------------------------------------------------
 */

static char *v1_store(const struct v1log *l)
{
	char *dir = dt_mkdtemp("holes-v1");
	char *log = dt_fmt("%s/" DSKVS_LOG_NAME, dir);
	v1_write(l, log);
	free(log);
	return dir;
}

static void v1_check_state(dskvs *s, const char *when)
{
	SOFT(holds(s, "a/k2", "two"), "%s: a/k2", when);
	SOFT(holds(s, "a/k3", "three"), "%s: a/k3", when);
	SOFT(holds(s, "c/k1", ""), "%s: c/k1 (empty value)", when);
	SOFT(absent(s, "a/k1"), "%s: a/k1 was deleted", when);
	SOFT(absent(s, "b/k1") && absent(s, "b/k2"),
	     "%s: collection b was deleted", when);
}

static void v1_compat_case(void *arg)
{
	(void)arg;
	struct v1log l;
	v1_init(&l);
	v1_rec(&l, V1_PUT, 0, 1, "a/k1", "one", 3, 1);
	v1_rec(&l, V1_PUT, 0, 1, "a/k2", "two", 3, 2);
	v1_rec(&l, V1_PUT, 0, 1, "b/k1", "bee", 3, 3);
	v1_rec(&l, V1_PUT, V1_END, 1, "b/k2", "bee2", 4, 4);
	v1_rec(&l, V1_DEL, 0, 2, "a/k1", NULL, 0, 5);
	v1_rec(&l, V1_DELALL, 0, 2, "b", NULL, 0, 6);
	v1_rec(&l, V1_PUT, 0, 2, "c/k1", NULL, 0, 7);
	v1_rec(&l, V1_PUT, V1_END, 2, "a/k3", "three", 5, 8);
	char *dir = v1_store(&l);

	dskvs_verify_report rep;
	SOFT_RC(dskvs_verify(dir, NULL, NULL, &rep), DSKVS_OK);
	SOFT(rep.records == 8 && rep.puts == 6 && rep.deletes == 1 &&
	         rep.delete_alls == 1 && rep.damaged == 0 &&
	         rep.torn_tail == 0 && rep.format_major == 1,
	     "verify: %llu records (%llu puts, %llu deletes, %llu "
	     "delete-alls), %llu damaged, torn %d, version %u.%u",
	     (unsigned long long)rep.records, (unsigned long long)rep.puts,
	     (unsigned long long)rep.deletes,
	     (unsigned long long)rep.delete_alls,
	     (unsigned long long)rep.damaged, rep.torn_tail, rep.format_major,
	     rep.format_minor);

	dskvs *s = NULL;
	int rc = dskvs_open(dir, NULL, &s);
	SOFT(rc == DSKVS_OK, "dskvs_open of a v1.0 log = %s (%s)",
	     dskvs_err_name(rc), dskvs_errmsg(NULL));
	if (rc == DSKVS_OK) {
		v1_check_state(s, "after open");
		uint64_t seq = 0;
		DT_RC(dskvs_put_seq(s, "d/new", "n", 1, NULL, NULL, &seq),
		      DSKVS_OK);
		SOFT(seq > 8, "the first new write got sequence number %llu",
		     (unsigned long long)seq);
		DT_RC(dskvs_close(s), DSKVS_OK);
		s = NULL;
		rc = dskvs_open(dir, NULL, &s);
		SOFT(rc == DSKVS_OK, "reopen = %s (%s)", dskvs_err_name(rc),
		     dskvs_errmsg(NULL));
		if (rc == DSKVS_OK) {
			v1_check_state(s, "after reopen");
			SOFT(holds(s, "d/new", "n"), "d/new after reopen");
			DT_RC(dskvs_close(s), DSKVS_OK);
		}
	}
	dt_rmtree(dir);
	free(dir);
	v1_free(&l);
	soft_done();
}

/* dskvs_open of the log must say DSKVS_ECORRUPT. */
static void v1_expect_corrupt(struct v1log *l, const char *what)
{
	char *dir = v1_store(l);
	dskvs *s = NULL;
	int rc = dskvs_open(dir, NULL, &s);
	SOFT(rc == DSKVS_ECORRUPT,
	     "dskvs_open of %s = %s, not DSKVS_ECORRUPT "
	     "(%s)",
	     what, dskvs_err_name(rc), dskvs_errmsg(NULL));
	if (rc == DSKVS_OK) {
		uint64_t a = 0, b = 0;
		int r1 = dskvs_put_seq(s, "z/1", "1", 1, NULL, NULL, &a);
		int r2 = dskvs_put_seq(s, "z/2", "2", 1, NULL, NULL, &b);
		printf("  it opened; the next writes got sequence numbers "
		       "%llu (%s) and %llu (%s)\n",
		       (unsigned long long)a, dskvs_err_name(r1),
		       (unsigned long long)b, dskvs_err_name(r2));
		dskvs_close(s);
	}
	dt_rmtree(dir);
	free(dir);
	v1_free(l);
}

static void v1_huge_seq_case(void *arg)
{
	(void)arg;
	struct v1log l;
	v1_init(&l);
	v1_rec(&l, V1_PUT, 0, 1, "a/k1", "one", 3, 1);
	v1_rec(&l, V1_PUT, 0, 1, "a/k2", "two", 3, 2);
	v1_rec(&l, V1_PUT, V1_END, 1, "a/k3", "three", 5, 3);
	v1_rec(&l, V1_PUT, 0, 2, "b/k1", "four", 4, 4);
	v1_rec(&l, V1_PUT, 0, 2, "b/k2", "five", 4, 5);
	v1_rec(&l, V1_PUT, V1_END, 2, "b/k3", "huge", 4, UINT64_MAX - 1);
	v1_expect_corrupt(&l, "a log whose last record has sequence number "
	                      "2^64 - 2 after 1..5");
	soft_done();
}

static void v1_seq_backwards_case(void *arg)
{
	(void)arg;
	struct v1log l;
	v1_init(&l);
	v1_rec(&l, V1_PUT, 0, 1, "a/k1", "one", 3, 10);
	v1_rec(&l, V1_PUT, 0, 1, "a/k2", "two", 3, 11);
	v1_rec(&l, V1_PUT, V1_END, 1, "a/k3", "three", 5, 12);
	v1_rec(&l, V1_PUT, 0, 2, "b/k1", "four", 4, 3);
	v1_rec(&l, V1_PUT, V1_END, 2, "b/k2", "five", 4, 4);
	v1_expect_corrupt(&l, "a log whose batch 2 has sequence numbers 3, 4 "
	                      "after batch 1's 10..12");
	soft_done();
}

/* ---- crafted input for a quadratic scan ------------------------------------
 */

static void crafted_case(void *arg)
{
	(void)arg;
	char *dir = dt_mkdtemp("holes-crafted");
	char *log = dt_fmt("%s/" DSKVS_LOG_NAME, dir);
	v1_crafted_quadratic(log, 256u << 10);
	DT_CHECK(dt_file_size(log) == 256 << 10, "crafted log of %lld bytes",
	         dt_file_size(log));

	double t0 = now_s();
	int vrc = dskvs_verify(dir, NULL, NULL, NULL);
	double t1 = now_s();
	SOFT(vrc == DSKVS_OK || vrc == DSKVS_ECORRUPT,
	     "dskvs_verify of the crafted log = %s (%s)", dskvs_err_name(vrc),
	     dskvs_errmsg(NULL));
	dskvs *s = NULL;
	int rc = dskvs_open(dir, NULL, &s);
	double t2 = now_s();
	SOFT(rc == DSKVS_OK || rc == DSKVS_ECORRUPT,
	     "dskvs_open of the crafted log = %s (%s)", dskvs_err_name(rc),
	     dskvs_errmsg(NULL));
	if (rc == DSKVS_OK) {
		SOFT(holds(s, "a/k", "valid"),
		     "the one valid record was not replayed");
		DT_RC(dskvs_close(s), DSKVS_OK);
	}
	printf("  crafted 256 KiB: verify %s in %.3f s, open %s in %.3f s "
	       "(not checked)\n",
	       dskvs_err_name(vrc), t1 - t0, dskvs_err_name(rc), t2 - t1);
	dt_rmtree(dir);
	free(log);
	free(dir);
	soft_done();
}

/* ---- main -------------------------------------------------------------------
 */

static const struct rw_case rw_eio = { "rewrite_fails_eio", EIO, false };
static const struct rw_case rw_enospc = { "rewrite_fails_enospc", ENOSPC,
	                                  false };
static const struct rw_case rw_compact = { "compact_then_rewrite_fail", EIO,
	                                   true };

struct test {
	const char *name;
	void (*fn)(void *);
	const void *arg;
};

static const struct test tests[] = {
	{ "rewrite_fails_eio", rewrite_case, &rw_eio },
	{ "rewrite_fails_enospc", rewrite_case, &rw_enospc },
	{ "compact_then_rewrite_fail", rewrite_case, &rw_compact },
	{ "pread_eio_open_and_verify", pread_case, NULL },
	{ "v1_compat", v1_compat_case, NULL },
	{ "v1_huge_seq_is_ecorrupt", v1_huge_seq_case, NULL },
	{ "v1_seq_backwards_is_ecorrupt", v1_seq_backwards_case, NULL },
	{ "crafted_quadratic", crafted_case, NULL },
};
#define NTESTS (sizeof(tests) / sizeof(tests[0]))

int main(int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : NULL;
	unsigned failed = 0, ran = 0;

	for (size_t i = 0; i < NTESTS; i++) {
		if (only && strstr(tests[i].name, only) == NULL)
			continue;
		printf("%s\n", tests[i].name);
		double t0 = now_s();
		int st =
		    dt_run_forked(tests[i].fn, (void *)(uintptr_t)tests[i].arg);
		bool ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
		printf("%s: %s (%.2f s)\n", tests[i].name, ok ? "ok" : "FAILED",
		       now_s() - t0);
		if (!ok && WIFSIGNALED(st))
			printf("  killed by signal %d\n", WTERMSIG(st));
		failed += !ok;
		ran++;
	}
	printf("%u of %u failed\n", failed, ran);
	return failed ? 1 : 0;
}
