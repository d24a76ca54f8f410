/*
 * rev13b: adversarial review of the fixes to issue 13 (closing marks, the
 * sealed part's mark, version numbering after crashes, get_all in
 * callbacks, the batch's hold of its members map, backup's path).
 * White-box: links dskvs_internal to reach the I/O seam.
 */
#include "testutil.h"

#include "internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

TestSuite(rev13b, .init = tu_setup, .fini = tu_teardown, .timeout = 60);

/* ---- a crash in the middle of close's one write ------------------------ */

/* The child's pwritev: the first write of exactly one record header (the
 * closing mark) reaches the disk only in part, its checksums without the
 * flags after them (a mark written over a mark differs from it in its
 * checksum and flags only), then the process dies (a power loss or kill -9
 * in the middle of that write). */
static ssize_t torn_mark_pwritev(int fd, const struct iovec *iov, int cnt,
                                 off_t off)
{
	size_t n = 0;
	for (int i = 0; i < cnt; i++)
		n += iov[i].iov_len;
	if (n == DSKVS_REC_HDR && cnt == 1) {
		ssize_t w = pwrite(fd, iov[0].iov_base, 8, off);
		(void)w;
		fdatasync(fd);
		_exit(9);
	}
	return pwritev(fd, iov, cnt, off);
}

/* Open and close the store in a child that dies in the middle of the
 * closing mark's write. */
static void open_close_torn(const char *dir)
{
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		dskvs *s;
		if (dskvs_open(dir, NULL, &s))
			_exit(2);
		dskvs__io.pwritev = torn_mark_pwritev;
		dskvs_close(s);
		_exit(0); /* no record header written at close */
	}
	int st;
	waitpid(pid, &st, 0);
	cr_assert(WIFEXITED(st));
	cr_log_info("child exit %d", WEXITSTATUS(st));
}

/*
 * A compaction leaves a log that ends with its sealed part, whose last
 * record is the mark carrying the high-water sequence number. After a
 * crash (no closing mark), the next open takes that mark for "the mark the
 * log ends with" (recover.c: tail_mark_off = log_size - DSKVS_REC_HDR) and
 * close writes its closing mark over it in place: over the last record of
 * the part the file header says was synced whole. A crash that tears that
 * one write leaves damage inside the sealed part, which every later open
 * refuses with DSKVS_ECORRUPT, although every write in the store had been
 * synced and nothing had been written since.
 */
Test(rev13b, torn_close_after_compaction_and_crash_keeps_the_store)
{
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		dskvs *s;
		if (dskvs_open(tu_dir, NULL, &s))
			_exit(2);
		dskvs_put(s, "c/a", "1", 1, NULL, NULL);
		dskvs_put(s, "c/y", "old", 3, NULL, NULL);
		dskvs_delete(s, "c/y");
		if (dskvs_compact(s) || dskvs_sync(s))
			_exit(3);
		_exit(0); /* crash: no close */
	}
	int st;
	waitpid(pid, &st, 0);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);

	/* The store opens, and something only reads it and closes it (say
	 * `dskvs get`), dying mid-way through close's write. */
	open_close_torn(tu_dir);

	dskvs *s;
	int rc = dskvs_open(tu_dir, NULL, &s);
	cr_assert_eq(rc, DSKVS_OK,
	             "open after a torn closing mark: %s (%s): every write "
	             "was synced before, nothing written since",
	             dskvs_strerror(rc), dskvs_errmsg(NULL));
	tu_check_str(s, "c/a", "1");
	tu_close(s);
}

/* Control: the same without the compaction (the log ends with an idle
 * mark, which the closing mark may overwrite: a torn tail). */
Test(rev13b, torn_close_after_idle_mark_keeps_the_store)
{
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		dskvs *s;
		if (dskvs_open(tu_dir, NULL, &s))
			_exit(2);
		dskvs_put(s, "c/a", "1", 1, NULL, NULL);
		if (dskvs_sync(s))
			_exit(3);
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	open_close_torn(tu_dir);
	dskvs *s;
	int rc = dskvs_open(tu_dir, NULL, &s);
	cr_assert_eq(rc, DSKVS_OK, "%s (%s)", dskvs_strerror(rc),
	             dskvs_errmsg(NULL));
	tu_check_str(s, "c/a", "1");
	tu_close(s);
}

/* ---- get_all from update callbacks on two stores ----------------------- */

#include <pthread.h>
#include <time.h>

static struct {
	dskvs *s1, *s2;
	pthread_barrier_t bar;
	int rc1, rc2;
} x;

static int count_visit(const char *m, size_t ml, const void *v, size_t vl,
                       void *arg)
{
	(void)m, (void)ml, (void)v, (void)vl;
	++*(int *)arg;
	return 0;
}

static int cb1(const void *old, size_t old_len, int exists,
               const void **new_val, size_t *new_len, void *arg)
{
	(void)old, (void)old_len, (void)exists, (void)new_val, (void)new_len;
	int n = 0;
	pthread_barrier_wait(&x.bar);
	*(int *)arg = dskvs_get_all(x.s2, "X", count_visit, &n);
	return DSKVS_UPDATE_KEEP;
}

static int cb2(const void *old, size_t old_len, int exists,
               const void **new_val, size_t *new_len, void *arg)
{
	(void)old, (void)old_len, (void)exists, (void)new_val, (void)new_len;
	int n = 0;
	pthread_barrier_wait(&x.bar);
	*(int *)arg = dskvs_get_all(x.s1, "A", count_visit, &n);
	return DSKVS_UPDATE_KEEP;
}

static void *t1(void *arg)
{
	(void)arg;
	dskvs_update(x.s1, "A/k", cb1, &x.rc1, NULL);
	return NULL;
}

static void *t2(void *arg)
{
	(void)arg;
	dskvs_update(x.s2, "X/k", cb2, &x.rc2, NULL);
	return NULL;
}

/*
 * The fix made a callback's dskvs_get_all of its own collection skip the
 * lock and refused other collections of the same store, because "two
 * callbacks walking each other's collection deadlocked". The same two
 * callbacks on two stores (DESIGN §4.10: several stores in one process;
 * the header: a callback "may read the store", and nothing forbids reading
 * another) still deadlock: each holds its collection's lock and waits in
 * dskvs_get_all for the other's. Either refuse (EINVAL) or complete; never
 * hang.
 */
Test(rev13b, get_all_across_two_stores_from_update_callbacks_does_not_hang)
{
	char *d1 = tu_subdir("one"), *d2 = tu_subdir("two");
	x.s1 = tu_open(d1);
	x.s2 = tu_open(d2);
	free(d1);
	free(d2);
	tu_put_str(x.s1, "A/k", "1");
	tu_put_str(x.s2, "X/k", "2");
	x.rc1 = x.rc2 = 12345;
	pthread_barrier_init(&x.bar, NULL, 2);
	pthread_t a, b;
	cr_assert_eq(pthread_create(&a, NULL, t1, NULL), 0);
	cr_assert_eq(pthread_create(&b, NULL, t2, NULL), 0);
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 5;
	int ja = pthread_timedjoin_np(a, NULL, &dl);
	int jb = ja ? ja : pthread_timedjoin_np(b, NULL, &dl);
	cr_assert_eq(ja | jb, 0,
	             "two update callbacks, each walking the other store's "
	             "collection with dskvs_get_all, still hang after 5 s "
	             "(rc1 %d rc2 %d)",
	             x.rc1, x.rc2);
	cr_log_info("rc1 %d rc2 %d", x.rc1, x.rc2);
	tu_close(x.s1);
	tu_close(x.s2);
}

/* ---- versions after a crash of a session that opened a closed log ------ */

/* The child's pwritev on the log: never returns (the janitor's write is
 * stuck, say on a slow disk), so what is queued never reaches the file. */
static ssize_t stuck_pwritev(int fd, const struct iovec *iov, int cnt,
                             off_t off)
{
	(void)fd, (void)iov, (void)cnt, (void)off;
	for (;;)
		pause();
	return -1;
}

/* The child's pwritev: fails (a full disk), a sticky error. */
static ssize_t enospc_pwritev(int fd, const struct iovec *iov, int cnt,
                              off_t off)
{
	(void)fd, (void)iov, (void)cnt, (void)off;
	errno = ENOSPC;
	return -1;
}

/* A clean store: c/a written, closed (the log ends with a closing mark). */
static uint64_t closed_store(void)
{
	dskvs *s = tu_open(tu_dir);
	uint64_t v;
	cr_assert_eq(dskvs_put_seq(s, "c/a", "1", 1, NULL, NULL, &v), 0);
	tu_close(s);
	return v;
}

/* A session that shows a version for a put that never reaches the log,
 * then is killed. Returns the version. */
static uint64_t killed_session_with_lost_write(void)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		dskvs *s;
		uint64_t v = 0;
		if (dskvs_open(tu_dir, NULL, &s))
			_exit(2);
		dskvs__io.pwritev = stuck_pwritev;
		if (dskvs_put_seq(s, "c/y", "lost", 4, NULL, NULL, &v))
			_exit(3);
		if (write(p[1], &v, sizeof(v)) != sizeof(v))
			_exit(4);
		for (;;)
			pause();
	}
	close(p[1]);
	uint64_t v;
	cr_assert_eq(read(p[0], &v, sizeof(v)), (ssize_t)sizeof(v));
	close(p[0]);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return v;
}

/*
 * recover.c, next_seq_base: "A log that ends with its closing mark was
 * closed: no sequence number above that mark's was ever handed out." Not
 * so once a later session has opened it: open writes nothing when the log
 * ends with a closing mark (tail_proven), so until that session's first
 * batch reaches the file the log still ends with the old closing mark. A
 * session killed in that window (its puts returned, their versions shown
 * by dskvs_put_seq / dskvs_get_seq, the janitor's write not yet on disk)
 * leaves a log that the next open takes for a closed one: it numbers from
 * the old mark and hands out the lost write's version again, so a
 * compare-and-swap holding it succeeds against another value -- the very
 * ABA the 2^32 gap was added for.
 */
Test(rev13b, version_not_reused_after_kill_of_a_session_on_a_closed_log)
{
	closed_store();
	uint64_t lost = killed_session_with_lost_write();

	dskvs *s = tu_open(tu_dir);
	tu_check_absent(s, "c/y"); /* never synced: fine to lose */
	uint64_t nv;
	cr_assert_eq(dskvs_put_seq(s, "c/y", "new", 3, NULL, NULL, &nv), 0);
	int rc = dskvs_put_if_seq(s, "c/y", "cas", 3, lost, NULL);
	cr_assert_gt(nv, lost,
	             "the killed session showed version %llu for a write "
	             "that never reached the log; the reopen gave %llu to "
	             "another value (CAS holding the lost version: rc %d)",
	             (unsigned long long)lost, (unsigned long long)nv, rc);
	tu_close(s);
}

/*
 * The same through a sticky error instead of a kill: the session's puts
 * returned with their versions, the janitor's first write failed (ENOSPC,
 * nothing reached the file), close reports DSKVS_EIO and, with the error
 * sticky, writes no closing mark -- so the log still ends with the old
 * one, and the next open numbers from it.
 */
Test(rev13b, version_not_reused_after_close_with_sticky_error_on_a_closed_log)
{
	closed_store();
	dskvs *s = tu_open(tu_dir);
	dskvs__io.pwritev = enospc_pwritev;
	uint64_t lost;
	cr_assert_eq(dskvs_put_seq(s, "c/y", "lost", 4, NULL, NULL, &lost), 0);
	int rc = dskvs_sync(s);
	cr_assert_eq(rc, DSKVS_EIO, "sync %d", rc);
	rc = dskvs_close(s);
	dskvs__io = dskvs__io_libc;
	cr_assert_eq(rc, DSKVS_EIO, "close %d", rc);

	s = tu_open(tu_dir);
	tu_check_absent(s, "c/y");
	uint64_t nv;
	cr_assert_eq(dskvs_put_seq(s, "c/y", "new", 3, NULL, NULL, &nv), 0);
	rc = dskvs_put_if_seq(s, "c/y", "cas", 3, lost, NULL);
	cr_assert_gt(nv, lost,
	             "version %llu (a put that returned, then failed to "
	             "persist) was given again to another value: %llu "
	             "(CAS holding it: rc %d)",
	             (unsigned long long)lost, (unsigned long long)nv, rc);
	tu_close(s);
}

/*
 * The same without any crash of the store itself: a hot backup taken when
 * the log ends with its sealed part (right after a compaction) is a copy
 * that ends with the sealed part's mark. The first open of the copy takes
 * that mark for the one the closing mark may overwrite; a crash in the
 * middle of that close leaves a backup that never opens again.
 */
Test(rev13b, torn_close_of_a_backup_taken_after_compaction_keeps_the_copy)
{
	dskvs *s = tu_open(tu_dir);
	tu_put_str(s, "c/a", "1");
	tu_put_str(s, "c/y", "old");
	cr_assert_eq(dskvs_delete(s, "c/y"), 0);
	cr_assert_eq(dskvs_compact(s), DSKVS_OK);
	char *copy = tu_mkdtemp(); /* empty, outside the store */
	cr_assert_eq(dskvs_backup(s, copy), DSKVS_OK, "%s", dskvs_errmsg(NULL));
	tu_close(s);

	open_close_torn(copy);

	dskvs *b;
	int rc = dskvs_open(copy, NULL, &b);
	if (rc != DSKVS_OK) {
		char *msg = tu_fmt("%s", dskvs_errmsg(NULL));
		tu_rmtree(copy);
		cr_assert_fail("the backup no longer opens after a crash in "
		               "its first close: %s (%s)",
		               dskvs_strerror(rc), msg);
	}
	cr_assert_eq(rc, DSKVS_OK,
	             "the backup no longer opens after a crash in its first "
	             "close: %s (%s)",
	             dskvs_strerror(rc), dskvs_errmsg(NULL));
	tu_check_str(b, "c/a", "1");
	tu_close(b);
	tu_rmtree(copy);
	free(copy);
}

/* The child's pwritev: once `torn_go` is set, half of the first write
 * reaches the disk, then the process dies (a torn batch). */
static int torn_go;
static ssize_t torn_batch_pwritev(int fd, const struct iovec *iov, int cnt,
                                  off_t off)
{
	(void)cnt;
	while (!__atomic_load_n(&torn_go, __ATOMIC_ACQUIRE))
		usleep(1000);
	size_t half = iov[0].iov_len / 2 ? iov[0].iov_len / 2 : 1;
	ssize_t w = pwrite(fd, iov[0].iov_base, half, off);
	(void)w;
	fdatasync(fd);
	_exit(9);
}

/*
 * Worse: the session that leaves the log ending with the old closing mark
 * need not hand out anything. Session 1 opens a closed log, shows version
 * v for a put and dies with that batch torn. Session 2 opens: the torn
 * tail is cut (so the log ends with the old closing mark again), and since
 * the log did not end with its closing mark, numbering goes on 2^32 above
 * -- but only in memory: session 2 is killed before it writes anything
 * (a tool run, a process that crashed early). Session 3 finds a log that
 * ends with a closing mark and numbers from it: session 1's version v is
 * given to another value.
 */
Test(rev13b, version_not_reused_after_torn_tail_cut_then_kill_before_writing)
{
	closed_store();
	int p[2];
	cr_assert_eq(pipe(p), 0);
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) { /* session 1 */
		dskvs *s;
		uint64_t v = 0;
		size_t len;
		if (dskvs_open(tu_dir, NULL, &s))
			_exit(2);
		dskvs__io.pwritev = torn_batch_pwritev;
		if (dskvs_put_seq(s, "c/y", "lost", 4, NULL, NULL, &v))
			_exit(3);
		if (dskvs_get_seq(s, "c/y", NULL, 0, &len, &v) != DSKVS_ERANGE)
			_exit(4);
		if (write(p[1], &v, sizeof(v)) != sizeof(v))
			_exit(5);
		__atomic_store_n(&torn_go, 1, __ATOMIC_RELEASE);
		for (;;)
			pause();
	}
	close(p[1]);
	uint64_t lost;
	cr_assert_eq(read(p[0], &lost, sizeof(lost)), (ssize_t)sizeof(lost));
	int st;
	waitpid(pid, &st, 0);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 9, "%d", st);
	char *log = tu_log_path(tu_dir);
	uint64_t torn_size = tu_file_size(log);

	/* Session 2: opens (cutting the torn tail), dies before any write. */
	pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		dskvs *s;
		_exit(dskvs_open(tu_dir, NULL, &s) ? 2 : 0);
	}
	waitpid(pid, &st, 0);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	cr_log_info("log %llu bytes torn, %llu after session 2",
	            (unsigned long long)torn_size,
	            (unsigned long long)tu_file_size(log));

	/* Session 3. */
	dskvs *s = tu_open(tu_dir);
	uint64_t nv;
	cr_assert_eq(dskvs_put_seq(s, "c/y", "new", 3, NULL, NULL, &nv), 0);
	int rc = dskvs_put_if_seq(s, "c/y", "cas", 3, lost, NULL);
	cr_assert_gt(nv, lost,
	             "session 1 showed version %llu for a lost write; after "
	             "session 2 cut its torn tail and died, session 3 gave "
	             "%llu to another value (CAS holding %llu: rc %d)",
	             (unsigned long long)lost, (unsigned long long)nv,
	             (unsigned long long)lost, rc);
	tu_close(s);
}

/* A session that writes c/a, syncs and is killed (no close): the log ends
 * with the idle mark written after the sync. */
static void killed_session_with_synced_write(void)
{
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		dskvs *s;
		if (dskvs_open(tu_dir, NULL, &s))
			_exit(2);
		if (dskvs_put(s, "c/a", "1", 1, NULL, NULL) || dskvs_sync(s))
			_exit(3);
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/*
 * No closed log needed: two crashes in a row. After the first, open
 * numbers 2^32 above the log's highest number -- in memory only: the log
 * ends with a mark (tail_proven), so open writes nothing that records the
 * jump. A session that then shows a version and is killed before its
 * first batch reaches the file leaves the log exactly as the first crash
 * left it, and the next open jumps to the very same base: the lost
 * version is handed out again.
 */
Test(rev13b, version_not_reused_after_two_crashes_in_a_row)
{
	killed_session_with_synced_write();
	uint64_t lost = killed_session_with_lost_write();

	dskvs *s = tu_open(tu_dir);
	tu_check_absent(s, "c/y");
	uint64_t nv;
	cr_assert_eq(dskvs_put_seq(s, "c/y", "new", 3, NULL, NULL, &nv), 0);
	int rc = dskvs_put_if_seq(s, "c/y", "cas", 3, lost, NULL);
	cr_assert_gt(nv, lost,
	             "the second crashed session showed version %llu for a "
	             "lost write; the next open gave %llu to another value "
	             "(CAS holding it: rc %d)",
	             (unsigned long long)lost, (unsigned long long)nv, rc);
	tu_close(s);
}

/* ---- the sealed part's mark ------------------------------------------------
 *
 * After a compaction the sealed part ends with a mark carrying the highest
 * sequence number handed out before it, deletes included: the live records
 * alone would let a reopen after a crash number from the highest live
 * version (the 2^32 gap covers that only while fewer writes than that
 * followed it). Read off the file itself.
 */
static uint64_t le64_at(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

Test(rev13b, compacted_log_records_the_highest_version)
{
	dskvs *s = tu_open(tu_dir);
	dskvs_stats st;
	tu_put_str(s, "c/a", "1");
	tu_put_str(s, "c/y", "old");
	cr_assert_eq(dskvs_delete(s, "c/y"), DSKVS_OK);
	cr_assert_eq(dskvs_put(s, "c/z", "z", 1, NULL, NULL), DSKVS_OK);
	cr_assert_eq(dskvs_delete(s, "c/z"), DSKVS_OK);
	cr_assert_eq(dskvs_compact(s), DSKVS_OK);
	cr_assert_eq(dskvs_stats_get(s, &st), DSKVS_OK);
	char *log = tu_log_path(tu_dir);
	size_t n;
	unsigned char *b = tu_read_file(log, &n);
	uint64_t sealed = le64_at(b + 16);
	cr_assert_geq(sealed, (uint64_t)DSKVS_FILE_HDR + DSKVS_REC_HDR);
	cr_assert_leq(sealed, n);
	const unsigned char *m = b + sealed - DSKVS_REC_HDR;
	cr_assert_eq(m[8], DSKVS_REC_MARK,
	             "the sealed part ends with a record of type %u, not a "
	             "mark",
	             m[8]);
	cr_assert_eq(le64_at(m + 24), st.seq,
	             "the sealed part's mark says %llu; %llu was handed out",
	             (unsigned long long)le64_at(m + 24),
	             (unsigned long long)st.seq);
	free(b);
	free(log);
	tu_close(s);
}
